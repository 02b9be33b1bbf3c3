import { SseEventError } from '../errors/sse-event.error.js';
import type { SseMetadataOptions } from '../interfaces/sse-endpoint-options.interface.js';
import type { SseFilter } from '../interfaces/sse-message.interface.js';
import {
  DEFAULT_METADATA_MAX_KEYS,
  DEFAULT_METADATA_MAX_VALUES,
  DEFAULT_METADATA_MAX_VALUE_LENGTH,
  LAST_EVENT_ID_QUERY,
} from '../sse.constants.js';
import type { NormalizedFilter } from './connection-registry.js';

// Every rule on metadata lives here: the names a key may have, the values it may hold and how
// many, for each way metadata arrives (the query string, `trustedMetadata`, `stream.setMetadata`)
// and for the filters that match it.

/** Metadata keys: names a person would use, nothing that reaches an object prototype. */
const METADATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Why `key` cannot be a metadata key (query string, `setMetadata`, `trustedMetadata`, broadcast
 * filters, `maxConnectionsPerKey`), or undefined when it can.
 */
export function metadataKeyProblem(key: string): string | undefined {
  if (RESERVED_KEYS.has(key)) return `'${key}' is reserved`;
  if (!METADATA_KEY.test(key)) {
    return `'${key.slice(0, 64)}' is not a valid metadata name: use letters, digits, '_', '.', ':' or '-', at most 64 characters`;
  }
  return undefined;
}

/** A value as metadata and filters hold it; undefined for a type neither takes. */
function scalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** Metadata of one stream as it opens: the query's, then `trustedMetadata`'s, by key. */
export type SseMetadata = Map<string, string[]>;

/**
 * One endpoint's metadata limits (`SseEndpointOptions.metadata`, over the module's defaults).
 * A violation is reported through `fail`: a 400 for the query, an `SseEventError` in code.
 */
export class MetadataRules {
  private readonly maxKeys: number;
  private readonly maxValues: number;
  private readonly maxValueLength: number;
  private readonly allowedKeys: Set<string> | undefined;

  constructor(options: SseMetadataOptions = {}) {
    this.maxKeys = options.maxKeys ?? DEFAULT_METADATA_MAX_KEYS;
    this.maxValues = options.maxValuesPerKey ?? DEFAULT_METADATA_MAX_VALUES;
    this.maxValueLength = options.maxValueLength ?? DEFAULT_METADATA_MAX_VALUE_LENGTH;
    this.allowedKeys = options.allowedKeys ? new Set(options.allowedKeys) : undefined;
  }

  /**
   * The metadata and the `lastEventId` parameter of a stream's query string. Keys outside
   * `allowedKeys` are ignored; a bad key, too many keys or values, or too long a value fail.
   */
  fromQuery(url: string, fail: (message: string) => never): { metadata: SseMetadata; lastEventId: string | undefined } {
    const metadata: SseMetadata = new Map();
    let lastEventId: string | undefined;
    const q = url.indexOf('?');
    if (q === -1) return { metadata, lastEventId };
    for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
      if (key === LAST_EVENT_ID_QUERY) {
        lastEventId ??= value;
        continue;
      }
      if (this.allowedKeys && !this.allowedKeys.has(key)) continue;
      this.checkKey(key, fail, 'Metadata key');
      let values = metadata.get(key);
      if (values === undefined) {
        if (metadata.size >= this.maxKeys) fail(`Too many metadata keys in the query: at most ${this.maxKeys}.`);
        metadata.set(key, (values = []));
      }
      if (values.length >= this.maxValues) fail(`Metadata key '${key}' has more than ${this.maxValues} values.`);
      this.checkValue(key, value, fail);
      values.push(value);
    }
    return { metadata, lastEventId };
  }

  /**
   * Adds what `trustedMetadata` returned, each key replacing the query's. Its keys and values
   * meet the same rules as the query's (a name, string/number/boolean values, `maxValuesPerKey`,
   * `maxValueLength`); they come from the server, so they do not count against the query's
   * `maxKeys` and are not limited to `allowedKeys`. A violation throws `SseEventError`.
   */
  addTrusted(metadata: SseMetadata, trusted: unknown): void {
    if (trusted === undefined || trusted === null) return;
    if (typeof trusted !== 'object' || Array.isArray(trusted)) {
      failInCode('trustedMetadata must return an object of metadata keys to a value or a list of values.');
    }
    for (const [key, raw] of Object.entries(trusted as Record<string, unknown>)) {
      this.checkKey(key, failInCode, 'trustedMetadata key');
      const values = this.valuesOf(key, raw, 'trustedMetadata');
      metadata.set(key, values);
    }
  }

  /**
   * Checks `stream.setMetadata(key, value)` against the query's rules (a name, string/number/boolean
   * values, `maxValuesPerKey`, `maxValueLength`, `maxKeys`) and returns the values as the stream
   * holds them; throws `SseEventError`. Unlike `trustedMetadata`, an empty list is taken: a value
   * that follows the app's state (a user's rooms) may become empty, and then matches no filter.
   */
  checkChange(current: Readonly<Record<string, unknown>>, key: string, value: unknown): string[] {
    this.checkKey(key, failInCode, 'Metadata key');
    const values = Array.isArray(value) && value.length === 0 ? [] : this.valuesOf(key, value, 'setMetadata');
    if (!(key in current) && Object.keys(current).length >= this.maxKeys)
      failInCode(`Too many metadata keys: at most ${this.maxKeys}.`);
    return values;
  }

  private valuesOf(key: string, raw: unknown, source: string): string[] {
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) failInCode(`${source}: '${key}' is an empty list; leave the key out instead.`);
    if (list.length > this.maxValues) failInCode(`${source}: '${key}' has more than ${this.maxValues} values.`);
    const values: string[] = [];
    for (const item of list) {
      const value = scalar(item);
      if (value === undefined) failInCode(`${source}: '${key}' must be a string, number or boolean, or a list of them.`);
      this.checkValue(key, value, failInCode);
      values.push(value);
    }
    return values;
  }

  private checkKey(key: string, fail: (message: string) => never, what: string): void {
    const problem = metadataKeyProblem(key);
    if (problem !== undefined) fail(`${what} ${problem}.`);
  }

  private checkValue(key: string, value: string, fail: (message: string) => never): void {
    if (value.length > this.maxValueLength) {
      fail(`Metadata '${key}' is ${value.length} characters long; the limit is ${this.maxValueLength}.`);
    }
  }
}

/** Turns a user's filter into key → string values; throws `SseEventError` naming the bad key. */
export function normalizeFilter(filter: SseFilter): NormalizedFilter | undefined {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new SseEventError('filter must be an object of metadata keys to a value or a list of values');
  }
  const out: NormalizedFilter = Object.create(null);
  let keys = 0;
  for (const key of Object.keys(filter)) {
    const problem = metadataKeyProblem(key);
    if (problem !== undefined) throw new SseEventError(`filter key ${problem}`);
    const raw = filter[key];
    const list = Array.isArray(raw) ? raw : [raw];
    const values: string[] = [];
    for (const item of list) {
      const value = scalar(item);
      if (value === undefined) throw new SseEventError(`filter.${key} must be a string, number or boolean, or a list of them`);
      values.push(value);
    }
    if (values.length === 0) throw new SseEventError(`filter.${key} is an empty list, which matches nothing`);
    out[key] = values;
    keys++;
  }
  return keys === 0 ? undefined : out;
}

function failInCode(message: string): never {
  throw new SseEventError(message);
}
