import { createHash, timingSafeEqual } from 'node:crypto';

/** The token of an `Authorization: Bearer <token>` header, or '' without one. */
export function bearerToken(req: any): string {
  const header: string = req.headers?.authorization ?? '';
  return header.startsWith('Bearer ') ? header.slice(7) : '';
}

/**
 * Whether two tokens are equal, in a time that tells nothing about where they differ, nor (both
 * hashed to one length first) how long the expected one is.
 */
export function sameToken(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
