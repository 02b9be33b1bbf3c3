import { describe, it, expect, jest } from '@jest/globals';
import { inspect } from 'node:util';
import { SseConfigurationError, SseStreamTokens } from '@nest-sse/core';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('SseStreamTokens', () => {
  const tokens = new SseStreamTokens({ secret: SECRET, ttl: 60 });

  it('issues a token that verifies to its user until it expires, and is refused from then on', () => {
    const token = tokens.issue('alice', NOW);
    expect(token).toMatch(/^[\w-]+\.\d+\.[\w-]{43}$/);
    expect(tokens.verify(token, NOW)).toEqual({ userId: 'alice', expiresAt: NOW + 60_000 });
    expect(tokens.verify(token, NOW + 59_999)?.userId).toBe('alice');
    expect(tokens.verify(token, NOW + 60_000)).toBeUndefined();
    expect(tokens.verify(token, NOW + 3_600_000)).toBeUndefined();
  });

  it('binds the token to its user: another user id with the same signature is refused', () => {
    const [, expiry, signature] = tokens.issue('alice', NOW).split('.');
    const bob = Buffer.from('bob').toString('base64url');
    expect(tokens.verify(`${bob}.${expiry}.${signature}`, NOW)).toBeUndefined();
  });

  it('refuses a longer expiry, an altered signature, another key and anything malformed', () => {
    const token = tokens.issue('alice', NOW);
    const [user, expiry, signature] = token.split('.');
    const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11);
    const other = new SseStreamTokens({ secret: SECRET.replace('a-', 'b-') });
    for (const bad of [
      `${user}.${Number(expiry) + 3600}.${signature}`,
      `${user}.${expiry}.${flipped}`,
      other.issue('alice', NOW),
      `${user}.${expiry}`,
      `${user}.${expiry}.${signature}.x`,
      `${token}=`,
      '',
      'x'.repeat(600),
      undefined,
      42,
      { token },
    ]) {
      expect(tokens.verify(bad, NOW)).toBeUndefined();
    }
  });

  it('keeps user ids of any characters intact', () => {
    for (const id of ['a.b', 'ünïcødé', 'user:42/ß', ' spaced ']) {
      expect(tokens.verify(tokens.issue(id, NOW), NOW)?.userId).toBe(id);
    }
  });

  it('says what to give when the secret, the ttl or the user id cannot work', () => {
    expect(() => new SseStreamTokens({ secret: 'short' })).toThrow(SseConfigurationError);
    expect(() => new SseStreamTokens({ secret: 'short' })).toThrow(/at least 32 bytes/);
    expect(() => new SseStreamTokens({ secret: undefined as any })).toThrow(/at least 32 bytes/);
    expect(() => new SseStreamTokens({ secret: SECRET, ttl: 0 })).toThrow(
      /^SseStreamTokens options: ttl is 0; it must be an integer from 1 to 86400 \(seconds\)\.$/,
    );
    expect(() => new SseStreamTokens({ secret: SECRET, ttl: 1.5 })).toThrow(/ttl is 1\.5; it must be an integer/);
    expect(() => new SseStreamTokens({ secret: SECRET, ttl: NaN })).toThrow(/ttl is NaN/);
    // a ttl so long that the expiry would not fit a token would make every token invalid
    expect(() => new SseStreamTokens({ secret: SECRET, ttl: 1e12 })).toThrow(/ttl is 1000000000000/);
    expect(() => new SseStreamTokens({ secret: SECRET, tll: 30 } as any)).toThrow(
      /^SseStreamTokens options: tll is not a known option; did you mean ttl\? Known options: secret, ttl\.$/,
    );
    expect(() => tokens.issue('')).toThrow(/user id of 1 to 256 bytes/);
    expect(() => tokens.issue('x'.repeat(257))).toThrow(/user id of 1 to 256 bytes/);
    expect(new SseStreamTokens({ secret: Buffer.alloc(32, 7) }).issue('a')).toMatch(/^YQ\./);
  });

  it('names a secret that is too short without showing it', () => {
    let err: SseConfigurationError | undefined;
    try {
      new SseStreamTokens({ secret: 'hunter2-is-my-password' });
    } catch (e) {
      err = e as SseConfigurationError;
    }
    expect(err!.message).toBe(
      'SseStreamTokens options: secret is 22 bytes long; it must be a string or Uint8Array of at least 32 bytes ' +
        '(for example: openssl rand -base64 48), given from configuration.',
    );
    expect(err!.option).toBe('secret');
    expect(JSON.stringify({ ...err, message: err!.message })).not.toContain('hunter2');
    expect(() => new SseStreamTokens({ ttl: 30 } as any)).toThrow(/secret is undefined; .* The options need secret\./);
  });

  it('never shows the secret or a token, neither when inspected nor through the console', () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((name) =>
      jest.spyOn(console, name).mockImplementation(() => undefined),
    );
    try {
      const local = new SseStreamTokens({ secret: SECRET });
      const token = local.issue('alice');
      local.verify(token);
      local.verify('garbage');
      expect(inspect(local, { showHidden: true, depth: 5 })).not.toContain(SECRET);
      expect(JSON.stringify(local)).not.toContain(SECRET);
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('uses the default ttl of 60 seconds and the current time', () => {
    const local = new SseStreamTokens({ secret: SECRET });
    const claims = local.verify(local.issue('alice'))!;
    expect(claims.userId).toBe('alice');
    expect(claims.expiresAt - Date.now()).toBeGreaterThan(58_000);
    expect(claims.expiresAt - Date.now()).toBeLessThanOrEqual(60_000);
  });
});
