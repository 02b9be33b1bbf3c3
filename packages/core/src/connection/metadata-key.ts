/** Metadata keys: names a person would use, nothing that reaches an object prototype. */
const METADATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Why `key` cannot be a metadata key (query string, `setMetadata`, broadcast filters), or
 * undefined when it can.
 */
export function metadataKeyProblem(key: string): string | undefined {
  if (RESERVED_KEYS.has(key)) return `'${key}' is reserved`;
  if (!METADATA_KEY.test(key)) {
    return `'${key.slice(0, 64)}' is not a valid metadata name: use letters, digits, '_', '.', ':' or '-', at most 64 characters`;
  }
  return undefined;
}
