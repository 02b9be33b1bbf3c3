// The runner's side of a measured phase: the load generator reports how far every event has been
// fully delivered (its frontier); these wait on those reports, and publish against them.
import { performance } from 'node:perf_hooks';

/**
 * Passes each frontier the load generator reports to `onFrontier` until it returns true; resolves
 * with true if `timeoutMs` ran out first. Listens from the call on, so a publish sent right after
 * it is not missed.
 */
export function watchFrontier(load, onFrontier, timeoutMs) {
  return new Promise((resolve) => {
    const finish = (timedOut) => {
      clearTimeout(timer);
      load.onMessage = undefined;
      resolve(timedOut);
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    load.onMessage = (message) => {
      if (message.type === 'frontier' && onFrontier(message.value)) finish(false);
    };
  });
}

/**
 * Publishes as fast as delivery allows, for `seconds`: at most `window` events in flight
 * (published, not yet received by every recipient), given to the publisher `batch` at a time as
 * the oldest complete; then waits for the last to arrive. Events `start`, `start + 1`, ... of at
 * most `capacity`. Returns how many were published, whether it timed out, and the time it took.
 */
export async function publishClosedLoop({ load, publisher, start, capacity, window, batch, seconds, groups, size }) {
  const t0 = performance.now();
  let published = 0;
  const issue = (n) => {
    n = Math.min(n, capacity - published);
    if (n <= 0) return;
    const from = start + published;
    publisher.send({ cmd: 'publish', from, to: from + n - 1, start, groups, size });
    published += n;
  };
  const done = watchFrontier(
    load,
    (frontier) => {
      if (performance.now() - t0 >= seconds * 1000) return frontier >= published;
      while (published - frontier <= window - batch && published < capacity) issue(batch);
      return false;
    },
    seconds * 1000 + 30_000,
  );
  issue(window);
  const timedOut = await done;
  return { published, timedOut, ms: performance.now() - t0 };
}
