// `npm run start:cluster`: the Redis sample in SSE_WORKERS worker processes (default: one per
// core) sharing one port through node:cluster. The primary only hands out connections and keeps
// the workers up: a worker that exits is replaced, so SIGTERM to one worker (it drains its
// streams through app.close and its shutdown hooks) is a rolling restart step; SIGHUP to the
// primary rolls every worker in turn, starting each replacement before stopping the worker it
// replaces. SIGINT or SIGTERM to the primary stops them all.
import cluster from 'node:cluster';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), 'dist', 'main.js');

if (cluster.isPrimary) {
  const count = workerCount(process.env.SSE_WORKERS);
  /** The live worker of each slot; slot 0 runs the news ticker, so one process tells the news. */
  const slots = new Map();
  /** Slots being replaced on purpose (a roll): their old worker's exit forks nothing. */
  const replacing = new Set();
  let stopping = false;

  cluster.setupPrimary({ exec: main });

  const fork = (slot) => {
    const env = { SSE_WORKER_SLOT: String(slot + 1) };
    if (slot > 0 && process.env.NEWS_INTERVAL_MS === undefined) env.NEWS_INTERVAL_MS = '0';
    const worker = cluster.fork(env);
    worker.slot = slot;
    worker.startedAt = Date.now();
    worker.on('listening', () => {
      worker.listening = true;
      console.log(`[primary] worker ${slot + 1} (pid ${worker.process.pid}) listening`);
    });
    return worker;
  };

  for (let slot = 0; slot < count; slot++) slots.set(slot, fork(slot));
  console.log(`[primary] pid ${process.pid}, ${count} workers on one port (SSE_WORKERS)`);

  cluster.on('exit', (worker, code, signal) => {
    const slot = worker.slot;
    if (slots.get(slot) === worker) slots.delete(slot);
    if (stopping) {
      if (slots.size === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    if (replacing.has(worker)) {
      replacing.delete(worker);
      return;
    }
    console.log(`[primary] worker ${slot + 1} (pid ${worker.process.pid}) exited (${signal ?? code}); starting a replacement`);
    if (!worker.listening) {
      // it never came up: a replacement would fail the same way, in a loop
      console.error(`[primary] worker ${slot + 1} failed before listening; stopping`);
      process.exitCode = 1;
      stop('SIGTERM');
      return;
    }
    slots.set(slot, fork(slot));
  });

  /** Replaces every worker in turn: the new one listens before the old one drains and exits. */
  let rolling = false;
  const roll = async () => {
    if (rolling || stopping) return;
    rolling = true;
    console.log('[primary] rolling restart');
    for (const slot of [...slots.keys()].sort()) {
      const old = slots.get(slot);
      if (old === undefined || stopping) continue;
      const next = fork(slot);
      const up = await new Promise((resolve) => {
        next.once('listening', () => resolve(true));
        next.once('exit', () => resolve(false));
      });
      if (!up || stopping) break;
      replacing.add(old);
      slots.set(slot, next);
      const gone = new Promise((resolve) => old.once('exit', resolve));
      old.process.kill('SIGTERM');
      await gone;
    }
    rolling = false;
    if (!stopping) console.log('[primary] rolling restart done');
  };

  function stop(signal) {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker?.process.kill(signal);
    // a worker that does not stop in time is killed
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers)) worker?.process.kill('SIGKILL');
    }, 10_000).unref();
    if (Object.keys(cluster.workers).length === 0) process.exit(process.exitCode ?? 0);
  }

  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
  process.on('SIGHUP', () => void roll());
}

function workerCount(value) {
  if (value === undefined || value === '') return os.availableParallelism?.() ?? os.cpus().length;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`SSE_WORKERS must be a whole number of at least 1; got '${value}'`);
    process.exit(1);
  }
  return n;
}
