import type { SseBackoffOptions } from './sse-client-options.interface.js';

export const DEFAULT_BACKOFF: Required<SseBackoffOptions> = { initialDelay: 1000, maxDelay: 30_000, factor: 2 };

/**
 * Delay before reconnect attempt `attempt` (0 for the first): exponential, capped, with "equal
 * jitter" — half the step fixed, half random — so that clients dropped together by one server
 * restart spread out instead of returning in one wave, and no delay is ever near zero.
 */
export function backoffDelay(attempt: number, options: SseBackoffOptions = {}, random: () => number = Math.random): number {
  const { initialDelay, maxDelay, factor } = { ...DEFAULT_BACKOFF, ...options };
  const step = Math.min(maxDelay, initialDelay * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(step / 2 + random() * (step / 2));
}

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date
 * (RFC 9110 §10.2.3); `undefined` when absent or unreadable.
 */
export function retryAfterDelay(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // an HTTP date names its weekday and month; Date.parse would also take '-3' as a year
  const at = /[a-z]/i.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
