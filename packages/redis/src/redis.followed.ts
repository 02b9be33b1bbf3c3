import { compareStreamIds } from './redis-envelope.js';
import type { RouteKeys } from './redis.keys.js';

/** One routed value a node follows (see `RedisRouteFollower`): where it is, and who waits on it. */
export interface Followed {
  readonly value: string;
  readonly keys: RouteKeys;
  /** The last entry delivered: undefined until the position is known, '' when the Stream did not exist. */
  lastId: string | undefined;
  /** Subscribing or filling a gap: live messages wait in `held`, in arrival order. */
  busy: boolean;
  readonly held: Array<{ id: string; previous: string; payload: string }>;
  /** Catch up again once the fill under way is done (the subscriptions moved meanwhile). */
  again: boolean;
  /** Renew the subscription before the next read from the Stream (a Cluster's subscriptions moved). */
  renew: boolean;
  /**
   * The entry before the last loss this node told its clients of (see `lose`): a marker of the
   * same loss, written by another node or a publisher, is not told twice.
   */
  lostAfter: string | undefined;
  /** Set while no local connection holds the value: when it fires, the node lets the value go. */
  linger: NodeJS.Timeout | undefined;
  /** Settles once the position is known (the value's events are delivered from then on), or it is let go first. */
  readonly ready: Promise<void>;
  settle(err?: Error): void;
  /** Callers waiting until an entry has been delivered (see `through`). */
  readonly waiters: Array<{ id: string; resolve: () => void }>;
}

/** A value about to be followed: its position unknown, live messages held until it is known. */
export function newFollowed(value: string, keys: RouteKeys): Followed {
  let settle!: (err?: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  // a prepare nobody waits for any more must not reject into the event loop
  ready.catch(() => undefined);
  return {
    value,
    keys,
    lastId: undefined,
    busy: true,
    held: [],
    again: false,
    renew: false,
    lostAfter: undefined,
    linger: undefined,
    ready,
    settle,
    waiters: [],
  };
}

/** Whether the entry `id` of the value has been delivered. */
export function reached(f: Followed, id: string): boolean {
  return f.lastId !== undefined && f.lastId !== '' && compareStreamIds(f.lastId, id) >= 0;
}

/** Lets go the callers waiting for entries that have now been delivered. */
export function wake(f: Followed): void {
  if (f.waiters.length === 0) return;
  for (let i = f.waiters.length - 1; i >= 0; i--) {
    if (reached(f, f.waiters[i].id)) f.waiters.splice(i, 1)[0].resolve();
  }
}

/** Lets every caller waiting on `f` go: `ready` rejects with `err` if the position was never known. */
export function release(f: Followed, err: Error): void {
  f.settle(err);
  for (const waiter of f.waiters.splice(0)) waiter.resolve();
}

/** Resolves once the entry `id` has been delivered (see `wake`), or after `timeout` ms (`late` is called). */
export function waitThrough(f: Followed, id: string, timeout: number, late: () => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const at = f.waiters.indexOf(waiter);
      if (at !== -1) f.waiters.splice(at, 1);
      late();
      resolve();
    }, timeout);
    timer.unref();
    const waiter = {
      id,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    };
    f.waiters.push(waiter);
  });
}
