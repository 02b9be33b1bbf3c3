/**
 * The checks of `new SseClient(url, options)`: a misspelt option or a value that cannot work (a
 * NaN delay would reconnect in a loop) throws a `TypeError` naming the option, the value and the
 * rule. The client runs in browsers without `@nest-sse/core`, so it has its own small copy of the
 * rules' wording and of the "did you mean" lookup, kept small for the bundle.
 */

/** A rule: the literal values allowed, a `typeof` (or several, `|`-separated), or nested options. */
type Rule = readonly unknown[] | string | { [key: string]: Rule };

const DELAY = 'an integer from 1 to 2147483647 (ms)';
const BACKOFF = { initialDelay: DELAY, maxDelay: DELAY, factor: 'a number of at least 1' };

const OPTIONS: Record<string, Rule> = {
  connection: ['event-source', 'fetch'],
  EventSource: 'function',
  fetch: 'function',
  headers: 'object|function',
  query: 'object|function',
  withCredentials: 'boolean',
  credentials: ['omit', 'same-origin', 'include'],
  lastEventId: 'string',
  share: ['tabs', 'page', false],
  backoff: BACKOFF,
  parse: 'object|function',
};

/** Throws a `TypeError` for the first option that is unknown or breaks its rule. */
export function validateClientOptions(options: unknown): void {
  check(options, OPTIONS, 'options');
}

function check(value: unknown, rule: Rule, path: string): void {
  const fail = (must: string) => {
    const type = typeof value;
    const shown =
      value === null
        ? 'null'
        : type === 'string'
          ? JSON.stringify(value)
          : type === 'object'
            ? 'an object'
            : type === 'function'
              ? 'a function'
              : String(value);
    throw new TypeError(
      `SseClient ${path} ${path === 'options' ? 'are' : 'is'} ${shown}; ${path === 'options' ? 'they' : 'it'} must be ${must}.`,
    );
  };
  if (Array.isArray(rule)) {
    if (!rule.includes(value)) fail(`one of ${rule.map((v) => JSON.stringify(v)).join(', ')}`);
  } else if (typeof rule === 'string') {
    if (rule === DELAY) {
      if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 2_147_483_647) fail(rule);
    } else if (rule === BACKOFF.factor) {
      if (!(typeof value === 'number' && value >= 1 && value < Infinity)) fail(rule);
    } else if (value === null || !rule.split('|').includes(typeof value)) {
      fail(`${rule[0] === 'o' ? 'an' : 'a'} ${rule.replace('|', ' or a ')}`);
    }
  } else {
    if (value === null || typeof value !== 'object') return fail('an object');
    const known = Object.keys(rule);
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) {
        const guess = nearest(key, known);
        throw new TypeError(
          `SseClient ${path}: ${key} is not a known option${guess ? `; did you mean ${guess}?` : '.'} Known: ${known.join(', ')}.`,
        );
      }
    }
    for (const key of known) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) check(v, (rule as Record<string, Rule>)[key], path === 'options' ? `option ${key}` : `${path}.${key}`);
    }
  }
}

/** The known name closest to `name`, when close enough to be a typo (Levenshtein, one row). */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let least = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const row = Array.from({ length: candidate.length + 1 }, (_, j) => j);
    for (let i = 1; i <= name.length; i++) {
      let diagonal = row[0];
      row[0] = i;
      for (let j = 1; j <= candidate.length; j++) {
        const above = row[j];
        const same = name[i - 1].toLowerCase() === candidate[j - 1].toLowerCase();
        row[j] = Math.min(above + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1));
        diagonal = above;
      }
    }
    if (row[candidate.length] < least) [best, least] = [candidate, row[candidate.length]];
  }
  return best;
}
