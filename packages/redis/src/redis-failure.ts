import { RedisUnavailableError } from './errors/redis-unavailable.error.js';

/** Why Redis did not take a write, in words, and how many seconds a retry should wait. */
export interface RedisFailure {
  reason: string;
  retryAfter: number;
  /** False for a reply that waiting cannot change (a wrong type of key, say): only true ones are "for now". */
  transient: boolean;
}

// Redis error replies start with a code word; the ones a publish can meet, by what they mean.
const REPLIES: Array<[code: RegExp, reason: string, retryAfter: number]> = [
  [/^OOM\b/, 'Redis is out of memory: it reached maxmemory and its eviction policy refuses writes', 5],
  [
    /^READONLY\b/,
    'Redis answered READONLY: the connection reaches a read-only replica (a failover in progress, or the address of a replica)',
    2,
  ],
  [/^NOSCRIPT\b/, 'Redis lost the publish script (a restart or SCRIPT FLUSH) and it was not loaded again in time', 1],
  [/^(MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/, 'Redis is failing over: it has no master to write to yet', 2],
  [/^LOADING\b/, 'Redis is loading its dataset after a restart', 2],
  [/^BUSY\b/, 'Redis is busy running a long script', 1],
  [/^MISCONF\b/, 'Redis cannot save to disk and refuses writes (MISCONF)', 5],
];

/** Classifies what Redis (or the connection to it) answered a write with. */
export function redisFailure(err: unknown): RedisFailure {
  const message = String((err as Error)?.message ?? err);
  for (const [code, reason, retryAfter] of REPLIES) {
    if (code.test(message)) return { reason: `${reason} (${firstLine(message)})`, retryAfter, transient: true };
  }
  if ((err as Error)?.name === 'ReplyError')
    return { reason: `Redis refused it: ${firstLine(message)}`, retryAfter: 1, transient: false };
  return { reason: `Redis is unreachable (${firstLine(message)})`, retryAfter: 1, transient: true };
}

/** The error a broadcast Redis refused outright rejects with. */
export function refusedError(err: unknown): RedisUnavailableError {
  const failure = redisFailure(err);
  return new RedisUnavailableError(`${failure.reason}; this broadcast was not sent and will not be delivered.`, {
    retryAfter: failure.retryAfter,
    cause: err,
  });
}

/**
 * The error a broadcast that ran out of time rejects with: `message` says what became of it,
 * `last` (the last failure seen, if any) says why.
 */
export function timedOutError(message: string, last: unknown): RedisUnavailableError {
  if (last === undefined) return new RedisUnavailableError(message, { retryAfter: 1 });
  const failure = redisFailure(last);
  return new RedisUnavailableError(`${message} Last failure: ${failure.reason}.`, {
    retryAfter: failure.retryAfter,
    cause: last,
  });
}

function firstLine(message: string): string {
  const end = message.indexOf('\n');
  return end === -1 ? message : message.slice(0, end);
}
