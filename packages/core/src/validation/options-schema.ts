import { SseConfigurationError } from '../errors/sse-configuration.error.js';

/**
 * One rule for one option: what it says (for the error) and how it checks a value. Nested
 * objects check their own keys and pass the path down, so an error names the whole path
 * (`defaults.metadata.maxKeys`).
 */
export interface OptionRule {
  /** The rule in words, completing "it must be ...": `an integer from 1 to 65536`. */
  readonly rule: string;
  /** Throws `SseConfigurationError` when `value` breaks the rule; `path` names the option. */
  check(value: unknown, path: string, subject: string): void;
}

/** Checks `options` against `shape` and throws an `SseConfigurationError` naming the first broken rule. */
export function validateOptions(subject: string, options: unknown, shape: OptionRule): void {
  shape.check(options, '', subject);
}

/** An error naming the option, the value and the rule. */
export function optionError(subject: string, path: string, value: unknown, rule: string, hint?: string): SseConfigurationError {
  const [what, must] = path === '' ? ['the options are', 'they must'] : [`${path} is`, 'it must'];
  return new SseConfigurationError(`${subject}: ${what} ${describeValue(value)}; ${must} be ${rule}.${hint ? ` ${hint}` : ''}`, {
    option: path,
    value,
    rule,
  });
}

function simple(rule: string, ok: (value: unknown) => boolean): OptionRule {
  return {
    rule,
    check(value, path, subject) {
      if (!ok(value)) throw optionError(subject, path, value, rule);
    },
  };
}

interface NumberBounds {
  min: number;
  max?: number;
  /** What the number counts, for the rule: `ms`, `seconds`, `bytes`. */
  unit?: string;
  /** A value outside the range that is accepted too, with its meaning: `[0, 'off']`. */
  also?: [value: number, meaning: string];
}

/** The largest delay a Node timer honours (about 24.8 days), in ms. */
export const MAX_TIMER_MS = 2_147_483_647;

function bounds({ min, max, unit, also }: NumberBounds, kind: string): string {
  const range = max === undefined ? `${kind} of at least ${min}` : `${kind} from ${min} to ${max}`;
  const text = unit ? `${range} (${unit})` : range;
  return also ? `${also[0]} (${also[1]}) or ${text}` : text;
}

/** Rules for option values, composed into a shape with `object`. */
export const SseOptionRules = {
  /** A whole number in range (never NaN, never Infinity). */
  integer(spec: NumberBounds): OptionRule {
    return simple(
      bounds(spec, 'an integer'),
      (v) =>
        (spec.also !== undefined && v === spec.also[0]) ||
        (Number.isSafeInteger(v) && (v as number) >= spec.min && (spec.max === undefined || (v as number) <= spec.max)),
    );
  },
  /** A finite number in range. */
  number(spec: NumberBounds): OptionRule {
    return simple(
      bounds(spec, 'a number'),
      (v) =>
        (spec.also !== undefined && v === spec.also[0]) ||
        (typeof v === 'number' && Number.isFinite(v) && v >= spec.min && (spec.max === undefined || v <= spec.max)),
    );
  },
  boolean(): OptionRule {
    return simple('true or false', (v) => typeof v === 'boolean');
  },
  function(): OptionRule {
    return simple('a function', (v) => typeof v === 'function');
  },
  /** A string; `problem` returns why it is not acceptable, or undefined. */
  string(rule: string, problem: (v: string) => string | undefined = () => undefined): OptionRule {
    return {
      rule,
      check(value, path, subject) {
        if (typeof value !== 'string') throw optionError(subject, path, value, rule);
        const why = problem(value);
        if (why !== undefined) throw optionError(subject, path, value, rule, why);
      },
    };
  },
  /** One of a few literal values. */
  oneOf<T extends string | boolean | number>(values: readonly T[]): OptionRule {
    const rule = values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
    return {
      rule,
      check(value, path, subject) {
        if (values.includes(value as T)) return;
        const suggestion =
          typeof value === 'string'
            ? nearest(
                value,
                values.filter((v): v is T & string => typeof v === 'string'),
              )
            : undefined;
        throw optionError(subject, path, value, rule, suggestion ? `Did you mean '${suggestion}'?` : undefined);
      },
    };
  },
  /** A list whose every item follows `item`. */
  arrayOf(item: OptionRule, minItems = 0): OptionRule {
    const rule = `${minItems > 0 ? 'a non-empty list' : 'a list'}, each item ${item.rule}`;
    return {
      rule,
      check(value, path, subject) {
        if (!Array.isArray(value) || value.length < minItems) throw optionError(subject, path, value, rule);
        value.forEach((v, i) => item.check(v, `${path}[${i}]`, subject));
      },
    };
  },
  /** The first rule that accepts the value wins; the error states them all. */
  either(...rules: OptionRule[]): OptionRule {
    const rule = rules.map((r) => r.rule).join(', or ');
    return {
      rule,
      check(value, path, subject) {
        let last: unknown;
        for (const r of rules) {
          try {
            r.check(value, path, subject);
            return;
          } catch (err) {
            last = err;
          }
        }
        // an object that failed inside names its own inner option; say that one
        if (value !== null && typeof value === 'object' && (last as SseConfigurationError).option !== path) throw last;
        throw optionError(subject, path, value, rule);
      },
    };
  },
  /**
   * A plain object with these keys (each optional unless listed in `required`); any other key is
   * refused, with the nearest known name suggested.
   */
  object(shape: Record<string, OptionRule>, required: readonly string[] = [], noun = 'option'): OptionRule {
    const known = Object.keys(shape);
    const rule = `an object with ${required.length ? `${required.join(', ')} and optionally ` : ''}${known.filter((k) => !required.includes(k)).join(', ')}`;
    return {
      rule,
      check(value, path, subject) {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw optionError(subject, path, value, rule);
        for (const key of Object.keys(value)) {
          if (!Object.prototype.hasOwnProperty.call(shape, key)) {
            const at = join(path, key);
            const guess = nearest(key, known);
            throw new SseConfigurationError(
              `${subject}: ${at} is not a known ${noun}${guess ? `; did you mean ${join(path, guess)}?` : '.'} ` +
                `Known ${noun}s${path ? ` of ${path}` : ''}: ${known.join(', ')}.`,
              { option: at, value: (value as Record<string, unknown>)[key], rule: `one of ${known.join(', ')}` },
            );
          }
        }
        for (const key of required) {
          if ((value as Record<string, unknown>)[key] === undefined) {
            throw optionError(
              subject,
              join(path, key),
              undefined,
              shape[key].rule,
              `${path ? `${path} needs` : 'The options need'} ${key}.`,
            );
          }
        }
        for (const key of known) {
          const v = (value as Record<string, unknown>)[key];
          // undefined is "not given", as with an optional property: the default applies
          if (v !== undefined) shape[key].check(v, join(path, key), subject);
        }
      },
    };
  },
  /** Anything that passes `ok`, described by `rule`. */
  custom(rule: string, ok: (value: unknown) => boolean): OptionRule {
    return simple(rule, ok);
  },
};

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** How a value reads in an error: NaN and undefined named, strings quoted, objects short. */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (value === undefined || value === null || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
}

/** The known name closest to `name` by edit distance, when it is close enough to be a typo. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = name.toLowerCase();
  for (const candidate of known) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Levenshtein distance, with one row of memory. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}
