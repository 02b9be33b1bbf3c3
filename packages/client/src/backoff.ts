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
