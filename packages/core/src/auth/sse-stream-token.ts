import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SseConfigurationError } from '../errors/sse-configuration.error.js';
import { type OptionRule, SseOptionRules as R, validateOptions } from '../validation/options-schema.js';

/** Options of `new SseStreamTokens(options)`. */
export interface SseStreamTokenOptions {
  /**
   * Key of the HMAC-SHA256 signature: at least 32 bytes, from configuration, never from code.
   * Every node that verifies a token needs the key that issued it.
   */
  secret: string | Uint8Array;
  /**
   * Seconds a token stays valid: an integer from 1 to 86400. It only has to outlive the connect
   * (and a quick reconnect): the token is checked when a stream opens, not while it is open.
   * @default 60
   */
  ttl?: number;
}

/** What a valid token says. */
export interface SseStreamTokenClaims {
  /** The user the token was issued to. */
  userId: string;
  /** When it expires, in ms since the epoch. */
  expiresAt: number;
}

const DEFAULT_TTL = 60;
/** A day: a stream token only has to outlive a connect; the expiry must also fit its 12 digits. */
const MAX_TTL = 86_400;
const MIN_SECRET_BYTES = 32;
const MAX_USER_ID_BYTES = 256;
const MAX_TOKEN_LENGTH = 512;
/** Kept apart from every other use of the same key. */
const CONTEXT = 'nest-sse stream token v1\n';
const TOKEN = /^([A-Za-z0-9_-]+)\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The secret's rule. Its error never shows the value given (a short or mistyped secret is still a secret). */
const secretRule: OptionRule = {
  rule: `a string or Uint8Array of at least ${MIN_SECRET_BYTES} bytes`,
  check(value, path, subject) {
    const bytes = typeof value === 'string' ? Buffer.byteLength(value) : value instanceof Uint8Array ? value.length : undefined;
    if (bytes !== undefined && bytes >= MIN_SECRET_BYTES) return;
    const given = bytes === undefined ? (value === null ? 'null' : `a ${typeof value}`) : `${bytes} bytes long`;
    throw new SseConfigurationError(
      `${subject}: ${path} is ${given}; it must be ${this.rule} (for example: openssl rand -base64 48), given from configuration.`,
      { option: path, value: given, rule: this.rule },
    );
  },
};

const OPTIONS = R.object({ secret: secretRule, ttl: R.integer({ min: 1, max: MAX_TTL, unit: 'seconds' }) }, ['secret']);

/**
 * Short-lived signed stream tokens, for a browser's `EventSource`, which cannot send an
 * `Authorization` header: an authenticated request asks for a token, and the page opens
 * `/stream?stream_token=<token>`, whose guard verifies it and takes the user id from it.
 *
 * A token is `<user id>.<expiry>.<signature>` (base64url user id, expiry in seconds since the
 * epoch, HMAC-SHA256 over both): bound to one user, refused once expired, compared in constant
 * time. Nothing here logs; keep the token out of your own logs too, since it rides in a URL
 * (access logs, proxies): that is why it lives seconds, not hours.
 *
 * @example
 * const tokens = new SseStreamTokens({ secret: process.env.SSE_STREAM_SECRET!, ttl: 60 });
 * tokens.issue('alice');          // 'YWxpY2U.1767225600.3k…'
 * tokens.verify(token)?.userId;   // 'alice', or undefined when forged, altered or expired
 * @publicApi
 */
export class SseStreamTokens {
  /** The secret as a KeyObject: inspecting or logging this object never shows it. */
  private readonly key: KeyObject;
  private readonly ttl: number;

  constructor(options: SseStreamTokenOptions) {
    validateOptions('SseStreamTokens options', options, OPTIONS);
    const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
    this.key = createSecretKey(secret);
    this.ttl = options.ttl ?? DEFAULT_TTL;
  }

  /** A token for `userId`, valid for `ttl` seconds from `now` (ms since the epoch). */
  issue(userId: string, now: number = Date.now()): string {
    if (typeof userId !== 'string' || userId === '' || Buffer.byteLength(userId) > MAX_USER_ID_BYTES) {
      throw new TypeError(`A stream token needs a user id of 1 to ${MAX_USER_ID_BYTES} bytes.`);
    }
    const payload = `${Buffer.from(userId, 'utf8').toString('base64url')}.${Math.floor(now / 1000) + this.ttl}`;
    return `${payload}.${this.sign(payload).toString('base64url')}`;
  }

  /**
   * What `token` says when it is one of ours, unaltered and not expired at `now`; otherwise
   * `undefined`, whatever was wrong (no reason is given to whoever sent it).
   */
  verify(token: unknown, now: number = Date.now()): SseStreamTokenClaims | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined;
    const match = TOKEN.exec(token);
    if (match === null) return undefined;
    const [, user, expiry, signature] = match;
    const given = Buffer.from(signature, 'base64url');
    const expected = this.sign(`${user}.${expiry}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expiresAt = Number(expiry) * 1000;
    if (expiresAt <= now) return undefined;
    return { userId: Buffer.from(user, 'base64url').toString('utf8'), expiresAt };
  }

  private sign(payload: string): Buffer {
    return createHmac('sha256', this.key).update(CONTEXT).update(payload).digest();
  }
}
