// `npm run bench`: every subject through every scenario, subjects interleaved round by round,
// servers and the load generator in their own processes (pinned to separate cores when
// taskset is there). Prints a table of medians with ratios to the baseline of the same round,
// and writes everything measured to test/bench/results/. See test/bench/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { publishClosedLoop, watchFrontier } from './frontier.js';
import { partRouted, renderRouted, ROUTED_CONFIG } from './routed.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const dist = join(here, 'dist');
const resultsDir = join(here, 'results');

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const QUICK = flag('quick');
const CONFIG = QUICK
  ? {
      rounds: 1,
      sizes: [1000, 2000, 4000],
      throughputSeconds: 1,
      warmupSeconds: 0.2,
      latencySeconds: 2,
      rates: [5, 20],
      idleConnections: 4000,
      churn: 2000,
      connectStreams: 1000,
      stormSizes: [2000],
      budgetMs: 105_000,
    }
  : {
      rounds: 3,
      sizes: [1000, 5000, 10000],
      throughputSeconds: 2,
      warmupSeconds: 0.3,
      latencySeconds: 5,
      rates: [5, 20],
      idleConnections: 10000,
      churn: 10000,
      connectStreams: 4000,
      stormSizes: [10000, 20000],
      budgetMs: 14 * 60_000,
    };
if (option('rounds')) CONFIG.rounds = Number(option('rounds'));
if (option('sizes')) CONFIG.sizes = option('sizes').split(',').map(Number);
if (option('idle')) CONFIG.idleConnections = Number(option('idle'));
if (option('churn')) CONFIG.churn = Number(option('churn'));
if (option('connect')) CONFIG.connectStreams = Number(option('connect'));
if (option('storm')) CONFIG.stormSizes = option('storm').split(',').map(Number);
/** The routed scenario's sizes (routed.js), each with an option of its own. */
const ROUTED = { ...ROUTED_CONFIG[QUICK ? 'quick' : 'full'] };
for (const [key, name] of Object.entries({
  nodes: 'routed-nodes',
  users: 'routed-users',
  window: 'routed-window',
  seconds: 'routed-seconds',
  rate: 'routed-rate',
  events: 'routed-events',
  nodeEvents: 'routed-node-events',
})) {
  if (option(name)) ROUTED[key] = Number(option(name));
}
const EVENT_SIZE = 100;
/**
 * Deliveries in flight in a throughput phase: enough to keep a fast server busy across the
 * round trip, few enough that a slow one drains them in seconds. As events: 64 at 1k
 * connections, 32 at 5k, 16 at 10k, given to the publisher a quarter at a time.
 */
const WINDOW_DELIVERIES = 160_000;
function windowFor(connections) {
  const window = Number(option('window') ?? Math.min(64, Math.max(8, Math.round(WINDOW_DELIVERIES / connections))));
  return { window, batch: Number(option('batch') ?? Math.max(2, Math.floor(window / 4))) };
}
/** Groups of connections for the filtered broadcast: one event reaches 1 in 100. */
const GROUPS = 100;
const CONNECT_CONCURRENCY = 256;
const CHURN_CONCURRENCY = 64;

/**
 * The scenarios: `fanout` (throughput, latency, filtered), `memory` (idle memory, churn), `connect`,
 * `storm`, and `routed` (routed delivery against the single Stream, on clusters of its own: routed.js).
 */
const SCENARIOS = ['fanout', 'memory', 'connect', 'storm', 'routed'];
/** The scenarios a subject takes part in (`routed` starts clusters of its own). */
const ALL = ['fanout', 'memory', 'connect', 'storm'];
const FAN = ['fanout', 'memory'];
const SUBJECTS = [
  { name: 'baseline', script: 'baseline.js', scenarios: [...FAN, 'connect'] },
  { name: 'nest-sse', script: 'nest-sse.js', scenarios: ALL },
  { name: 'nest-sse guarded', script: 'nest-sse.js', env: { BENCH_GUARD: '1' }, shared: true, scenarios: ['connect'] },
  { name: 'nest-sse fastify', script: 'nest-sse.js', env: { BENCH_ADAPTER: 'fastify' }, shared: true, scenarios: ['connect'] },
  { name: 'express route', script: 'express-route.js', scenarios: ['connect'] },
  { name: 'express parsers', script: 'express-route.js', env: { BENCH_PARSERS: '1' }, shared: true, scenarios: ['connect'] },
  { name: 'nest route', script: 'nest-route.js', scenarios: ['connect'] },
  {
    name: 'nest route fastify',
    script: 'nest-route.js',
    env: { BENCH_ADAPTER: 'fastify' },
    shared: true,
    scenarios: ['connect'],
  },
  { name: 'nest @Sse', script: 'nest-builtin.js', scenarios: FAN },
  { name: 'better-sse', script: 'better-sse.js', scenarios: FAN },
  { name: 'nest-sse redis', script: 'nest-sse.js', redis: true, shared: true, scenarios: ALL },
  {
    name: 'nest-sse redis fastify',
    script: 'nest-sse.js',
    env: { BENCH_ADAPTER: 'fastify' },
    redis: true,
    shared: true,
    scenarios: ['connect'],
  },
];

const only = option('only')?.split(',');
const profileSubject = option('profile');
const scenarios = option('scenario')?.split(',') ?? SCENARIOS;
for (const name of scenarios)
  if (!SCENARIOS.includes(name)) throw new Error(`no scenario '${name}'; the scenarios: ${SCENARIOS.join(', ')}`);
const runs = (subject, scenario) => scenarios.includes(scenario) && subject.scenarios.includes(scenario);

/** A subject is named by its name, or (unless it shares its file with another) by its file name. */
function named(subject, name) {
  return subject.name === name || (!subject.shared && subject.script === `${name}.js`);
}

// ---------------------------------------------------------------------------------------------
// processes

const cores = os.availableParallelism?.() ?? os.cpus().length;
const taskset = !flag('no-pin') && cores >= 2 && which('taskset');
const SERVER_CORE = '0';
const CLIENT_CORE = cores >= 3 ? '1-' + (cores - 1) : '1';
if (taskset) execFileSync('taskset', ['-cp', CLIENT_CORE, String(process.pid)], { stdio: 'ignore' });

function which(bin) {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const children = new Set();
/** Processes that are not Node children (redis-server), killed on the way out. */
const others = new Set();
process.on('exit', () => {
  for (const proc of others) proc.kill('SIGKILL');
});

/** A child process spoken to over IPC: `call` sends a command and waits for its answer. */
class Child {
  constructor(name, proc) {
    this.name = name;
    this.proc = proc;
    this.nextId = 1;
    this.waiting = new Map();
    this.onMessage = undefined;
    this.errors = [];
    children.add(this);
    proc.on('message', (message) => {
      if (message.type === 'error') {
        this.errors.push(message.message);
        if (this.errors.length <= 3) console.error(`[${name}] ${message.message}`);
      }
      const waiter = message.id !== undefined ? this.waiting.get(message.id) : this.waiting.get(message.type);
      if (waiter) {
        this.waiting.delete(message.id ?? message.type);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      }
      this.onMessage?.(message);
    });
    this.exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.once('exit', (code) => {
      children.delete(this);
      for (const [, waiter] of this.waiting) waiter.reject(new Error(`${name} exited (${code}) ${this.errors[0] ?? ''}`));
      this.waiting.clear();
    });
  }

  wait(type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(type);
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(type, { resolve, reject, timer });
    });
  }

  call(message, timeoutMs = 60_000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no answer to '${message.cmd}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.send({ ...message, id });
    });
  }

  send(message) {
    if (this.proc.connected) this.proc.send(message);
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.send({ cmd: 'exit' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}

function launch(name, file, core, env = {}, execArgv = []) {
  const args = [...execArgv, file];
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'];
  const options = { stdio, cwd: root, env: { ...process.env, ...env } };
  const proc = taskset
    ? spawn('taskset', ['-c', core, process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
  return new Child(name, proc);
}

async function startServer(subject, env) {
  const server = launch(subject.name, join(dist, subject.script), SERVER_CORE, env, ['--expose-gc']);
  const ready = await server.wait('ready', 30_000);
  server.port = ready.port;
  return server;
}

async function startLoad(name = 'load') {
  const load = launch(name, join(here, 'load.js'), CLIENT_CORE, {}, ['--max-old-space-size=2048']);
  await load.wait('ready', 10_000);
  return load;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The Redis subject needs the built transport and a redis-server binary; says why not otherwise. */
function redisUnavailable() {
  const pkg = join(root, 'packages', 'redis', 'dist', 'index.js');
  if (!existsSync(pkg)) return '@nest-sse/redis is not built (packages/redis/dist/index.js is missing)';
  if (!/RedisTransport/.test(readFileSync(pkg, 'utf8'))) return '@nest-sse/redis does not export RedisTransport';
  if (!which('redis-server')) return 'redis-server is not installed';
  return undefined;
}

async function startRedis() {
  const port = await freePort();
  const options = { stdio: ['ignore', 'ignore', 'inherit'] };
  const args = ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'];
  const proc = taskset
    ? spawn('taskset', ['-c', SERVER_CORE, 'redis-server', ...args], options)
    : spawn('redis-server', args, options);
  others.add(proc);
  proc.once('exit', () => others.delete(proc));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    // taskset execs redis-server, so the pid is redis-server's either way
    pid: proc.pid,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', resolve);
        proc.kill('SIGTERM');
      }),
  };
}

/**
 * The subject's servers, `nodes` of a Redis subject (one of any other); the first one publishes.
 * `pids` are the other processes on the server core whose CPU counts as the subject's (its
 * redis-server).
 */
async function startSubject(subject, nodes = 2) {
  if (!subject.redis) return { servers: [await startServer(subject, { ...subject.env })], pids: [], stop: async () => {} };
  const redis = await startRedis();
  const env = { ...subject.env, BENCH_REDIS_URL: redis.url };
  const servers = [];
  for (const name of ['redis node A', 'redis node B'].slice(0, nodes)) servers.push(await startServer({ ...subject, name }, env));
  return { servers, pids: [redis.pid], stop: redis.stop };
}

// ---------------------------------------------------------------------------------------------
// measurements

/** Clock ticks per second, the unit of the CPU times in /proc/<pid>/stat. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
let procWarned = false;

/** User + system CPU of a process that is not a Node child (redis-server), in µs, from /proc. */
function processCpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command name, which is in brackets and may hold spaces: utime and stime are the 12th and 13th
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch (err) {
    if (!procWarned) console.error(`the CPU of process ${pid} is not counted (${err.message})`);
    procWarned = true;
    return 0;
  }
}

/** The subject's servers together; `cpuMicros` also counts its other processes (redis-server). */
async function stats({ servers, pids }, gc = false) {
  const all = await Promise.all(servers.map((s) => s.call({ cmd: 'stats', gc }, 30_000)));
  return {
    rss: sum(all, (s) => s.rss),
    heapUsed: sum(all, (s) => s.heapUsed),
    handles: sum(all, (s) => s.handles),
    connections: sum(all, (s) => s.connections),
    cpuMicros: sum(all, (s) => s.cpu.user + s.cpu.system) + sum(pids, processCpuMicros),
    eluActive: sum(all, (s) => s.elu.active),
    eluIdle: sum(all, (s) => s.elu.idle),
  };
}

function sum(list, f) {
  return list.reduce((total, item) => total + f(item), 0);
}

function serverCost(before, after) {
  const active = after.eluActive - before.eluActive;
  const idle = after.eluIdle - before.eluIdle;
  return { cpuMs: (after.cpuMicros - before.cpuMicros) / 1000, elu: active / Math.max(1e-9, active + idle) };
}

async function waitConnections(subject, n, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  let last;
  while (performance.now() < deadline) {
    last = await stats(subject);
    if (last.connections === n) return last;
    await sleep(100);
  }
  throw new Error(`the server holds ${last?.connections} streams, expected ${n}`);
}

async function connectTo(ctx, n) {
  const result = await ctx.load.call(
    {
      cmd: 'connect',
      ports: ctx.servers.map((s) => s.port),
      path: '/stream',
      count: n,
      concurrency: CONNECT_CONCURRENCY,
      groups: GROUPS,
    },
    180_000,
  );
  if (result.failed > 0) throw new Error(`${result.failed} of ${n} connections failed: ${result.firstError}`);
  await waitConnections(ctx, n);
  ctx.connections = n;
  await sleep(200);
  return result;
}

/**
 * Publishes as fast as delivery allows: at most `window` events are in flight (published, not
 * yet received by every recipient), given to the publisher `batch` at a time (that many rounds
 * of groups when filtered). Returns deliveries per second and the server's cost.
 */
async function closedLoop(ctx, { seconds, groups = 0 }) {
  const sized = windowFor(ctx.connections);
  const window = groups ? sized.window * groups : sized.window;
  const batch = groups ? sized.batch * groups : sized.batch;
  const capacity = 1 << 20;
  const start = ctx.seq;
  const { load } = ctx;
  await load.call({ cmd: 'phase', start, count: capacity, groups });
  const before = await stats(ctx);
  const {
    published,
    timedOut,
    ms: elapsed,
  } = await publishClosedLoop({
    load,
    publisher: ctx.servers[0],
    start,
    capacity,
    window,
    batch,
    seconds,
    groups,
    size: EVENT_SIZE,
  });
  const after = await stats(ctx);
  const phase = await load.call({ cmd: 'end-phase', published });
  ctx.seq = start + published;
  checkPhase(`${groups ? 'filtered' : 'fan-out'} at ${ctx.connections} connections`, phase, { timedOut });
  const cost = serverCost(before, after);
  return {
    events: published,
    deliveries: phase.delivered,
    rate: phase.delivered / (elapsed / 1000),
    seconds: elapsed / 1000,
    serverCpuMs: cost.cpuMs,
    serverCpuPerEventUs: (cost.cpuMs * 1000) / published,
    serverElu: cost.elu,
    clientCpuPct: (phase.cpuMs / elapsed) * 100,
    clientElu: phase.elu,
    p50: phase.p50,
    p99: phase.p99,
    missing: phase.missing,
    outOfOrder: phase.outOfOrder,
    unexpectedCloses: phase.unexpectedCloses,
    timedOut,
  };
}

/**
 * Fails a measured phase whose figures cannot be trusted: it timed out, deliveries are missing,
 * came twice or out of order, or the server closed streams. A steady-rate phase may end with
 * deliveries missing: that is its `behind` result.
 */
function checkPhase(what, phase, { timedOut = false, missingAllowed = false } = {}) {
  const problems = [];
  if (timedOut) problems.push('timed out');
  if (phase.missing > 0 && !missingAllowed) problems.push(`${phase.missing} of ${phase.owed} deliveries missing`);
  if (phase.outOfOrder > 0) problems.push(`${phase.outOfOrder} events repeated or out of order`);
  if (phase.unexpectedCloses > 0) problems.push(`${phase.unexpectedCloses} streams closed by the server`);
  if (problems.length > 0) throw new Error(`${what}: ${problems.join(', ')}`);
}

/** One event to every stream, which must arrive within `timeoutMs`: a subject that delivers nothing fails fast. */
async function probe(ctx, timeoutMs = 10_000) {
  const start = ctx.seq;
  await ctx.load.call({ cmd: 'phase', start, count: 1, groups: 0 });
  const arrived = watchFrontier(ctx.load, (frontier) => frontier >= 1, timeoutMs);
  ctx.servers[0].send({ cmd: 'publish', from: start, to: start, start, groups: 0, size: EVENT_SIZE });
  const timedOut = await arrived;
  const phase = await ctx.load.call({ cmd: 'end-phase', published: 1 });
  ctx.seq = start + 1;
  if (timedOut) throw new Error(`a probe event reached ${phase.delivered} of ${phase.owed} streams within ${timeoutMs} ms`);
  checkPhase('probe', phase);
}

async function throughput(ctx, seconds) {
  await closedLoop(ctx, { seconds: CONFIG.warmupSeconds });
  return closedLoop(ctx, { seconds });
}

/** Events at a steady rate from a timer in the server; waits a bounded time for stragglers. */
async function steady(ctx, { hz, seconds }) {
  const count = Math.round(hz * seconds);
  const start = ctx.seq;
  const { load } = ctx;
  const publisher = ctx.servers[0];
  await load.call({ cmd: 'phase', start, count, groups: 0 });
  const before = await stats(ctx);
  const t0 = performance.now();
  const grace = 3000;
  const arrived = watchFrontier(load, (frontier) => frontier >= count, seconds * 1000 + grace);
  publisher.send({ cmd: 'rate', from: start, count, hz, size: EVENT_SIZE });
  const done = !(await arrived);
  const elapsed = performance.now() - t0;
  const after = await stats(ctx);
  const phase = await load.call({ cmd: 'end-phase', published: count });
  ctx.seq = start + count;
  checkPhase(`${hz}/s at ${ctx.connections} connections`, phase, { missingAllowed: true });
  const cost = serverCost(before, after);
  return {
    hz,
    events: count,
    p50: phase.p50,
    p99: phase.p99,
    max: phase.max,
    complete: done,
    missingAtCutoff: phase.missing,
    outOfOrder: phase.outOfOrder,
    unexpectedCloses: phase.unexpectedCloses,
    serverElu: cost.elu,
    clientCpuPct: (phase.cpuMs / elapsed) * 100,
  };
}

/** Fan-out at each size, latency at the middle size, the filtered broadcast at the largest. */
async function partFanOut(subject) {
  const { servers, pids, stop } = await startSubject(subject);
  const load = await startLoad();
  const ctx = { servers, pids, load, seq: 1 };
  const out = { throughput: {}, latency: {} };
  try {
    const [small, middle, large] = CONFIG.sizes;
    await connectTo(ctx, small);
    await probe(ctx);
    out.throughput[small] = await throughput(ctx, CONFIG.throughputSeconds);
    await connectTo(ctx, middle);
    out.throughput[middle] = await throughput(ctx, CONFIG.throughputSeconds);
    out.latency[CONFIG.rates[0]] = await steady(ctx, { hz: CONFIG.rates[0], seconds: CONFIG.latencySeconds });
    await connectTo(ctx, large);
    out.throughput[large] = await throughput(ctx, CONFIG.throughputSeconds);
    const all = out.throughput[large];
    const filtered = await closedLoop(ctx, { seconds: CONFIG.throughputSeconds, groups: GROUPS });
    out.filtered = {
      connections: large,
      allCpuPerEventUs: all.serverCpuPerEventUs,
      filteredCpuPerEventUs: filtered.serverCpuPerEventUs,
      ratio: all.serverCpuPerEventUs / filtered.serverCpuPerEventUs,
      filteredEvents: filtered.events,
      missing: filtered.missing,
      outOfOrder: filtered.outOfOrder,
    };
    // the heavy rate last: a subject that falls behind leaves a backlog nothing else measures
    await load.call({ cmd: 'close', keep: middle });
    await waitConnections(ctx, middle);
    ctx.connections = middle;
    out.latency[CONFIG.rates[1]] = await steady(ctx, { hz: CONFIG.rates[1], seconds: CONFIG.latencySeconds });
  } catch (err) {
    out.error = err.message;
  } finally {
    await Promise.all([load.stop(), ...servers.map((s) => s.stop())]);
    await stop();
  }
  return out;
}

/** Idle memory per connection, then connect churn on the same fresh server. */
async function partMemory(subject) {
  const { servers, pids, stop } = await startSubject(subject);
  const load = await startLoad();
  const ctx = { servers, pids, load, seq: 1 };
  const out = {};
  const ports = servers.map((s) => s.port);
  const churn = (total) =>
    load.call({ cmd: 'churn', ports, path: '/stream', total, concurrency: CHURN_CONCURRENCY, groups: GROUPS }, 300_000);
  try {
    const n = CONFIG.idleConnections;
    const base = await stats(ctx, true);
    await connectTo(ctx, n);
    await sleep(1000);
    const idle = await stats(ctx, true);
    out.idle = {
      connections: n,
      rssPerConnKB: (idle.rss - base.rss) / n / 1024,
      heapPerConnKB: (idle.heapUsed - base.heapUsed) / n / 1024,
    };
    await load.call({ cmd: 'close', keep: 0 });
    await waitConnections(ctx, 0);
    await churn(200);
    await waitConnections(ctx, 0);
    await sleep(500);
    const before = await stats(ctx, true);
    const churned = await churn(CONFIG.churn);
    await waitConnections(ctx, 0);
    await sleep(500);
    const after = await stats(ctx, true);
    out.churn = {
      total: CONFIG.churn,
      failed: churned.failed,
      perSecond: CONFIG.churn / (churned.ms / 1000),
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      heapDeltaPct: ((after.heapUsed - before.heapUsed) / before.heapUsed) * 100,
      handlesBefore: before.handles,
      handlesAfter: after.handles,
      rssBefore: before.rss,
      rssAfter: after.rss,
    };
  } catch (err) {
    out.error = err.message;
  } finally {
    await Promise.all([load.stop(), ...servers.map((s) => s.stop())]);
    await stop();
  }
  return out;
}

/** The largest fan-out of one subject, profiled; the same without the profiler for comparison. */
async function profileFanOut(subject, file) {
  const { servers, pids, stop } = await startSubject(subject);
  const load = await startLoad();
  const ctx = { servers, pids, load, seq: 1 };
  try {
    await connectTo(ctx, CONFIG.sizes.at(-1));
    await probe(ctx);
    const plain = await throughput(ctx, CONFIG.throughputSeconds);
    await servers[0].call({ cmd: 'profile', action: 'start' });
    const profiled = await closedLoop(ctx, { seconds: CONFIG.throughputSeconds });
    await servers[0].call({ cmd: 'profile', action: 'stop', file });
    return { plain, profiled };
  } finally {
    await Promise.all([load.stop(), ...servers.map((s) => s.stop())]);
    await stop();
  }
}

/**
 * Server CPU to open one stream: a fresh subject, a warm-up of connects and closes, then
 * `CONFIG.connectStreams` streams opened (256 at a time) and held; the CPU of the server process
 * (and `redis-server`) from before the first request until it counts them all (so the `retry`
 * field and the welcome event are in), divided by the streams. One server process per subject, a
 * Redis subject's one node included: two processes taking turns on the one server core each cost
 * more per stream than one (the plain `node:http` handler too), so the baseline would not compare.
 * With `profileFile`, the server runs under V8's sampling profiler meanwhile.
 */
async function partConnect(subject, profileFile) {
  const { servers, pids, stop } = await startSubject(subject, 1);
  const load = await startLoad();
  const ctx = { servers, pids, load, seq: 1 };
  const n = CONFIG.connectStreams;
  try {
    await warmConnect(ctx, n);
    if (profileFile) await servers[0].call({ cmd: 'profile', action: 'start' });
    const before = await stats(ctx);
    const opened = await connectTo(ctx, n);
    const after = await stats(ctx);
    if (profileFile) await servers[0].call({ cmd: 'profile', action: 'stop', file: profileFile });
    const cost = serverCost(before, after);
    return { streams: n, cpuPerStreamUs: (cost.cpuMs * 1000) / n, serverElu: cost.elu, perSecond: n / (opened.ms / 1000) };
  } catch (err) {
    if (profileFile) throw err;
    return { error: err.message };
  } finally {
    await Promise.all([load.stop(), ...servers.map((s) => s.stop())]);
    await stop();
  }
}

/** Connects and closes a share of `n` streams twice, so the measured ones run optimized code. */
async function warmConnect(ctx, n) {
  for (let i = 0; i < 2; i++) {
    await connectTo(ctx, Math.ceil(n / 4));
    await ctx.load.call({ cmd: 'close', keep: 0 });
    await waitConnections(ctx, 0);
    ctx.connections = 0;
  }
  await sleep(300);
}

/** Streams one storm load generator holds: under a 20,000 open-file limit, with room to spare. */
const STORM_PER_LOAD = 15_000;
/** Events per second broadcast through the storm. */
const STORM_HZ = 10;

/**
 * A reconnect storm: `n` EventSource-like clients (load.js), broadcasts at STORM_HZ throughout,
 * then a server node restarts: memory, the one process; Redis, node B of two (node A publishes).
 * The node is closed as in a deploy (`app.close()`: streams drained with jittered `retry` hints),
 * and a new process listens on the same port. Reports the time until every client is streaming
 * again and checks every client's sequence of events from the first broadcast to the last.
 */
async function partStorm(subject, n) {
  const env = { BENCH_BACKLOG: option('backlog'), BENCH_DRAIN_MS: option('drain'), BENCH_RETRY_MS: option('retry') };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const redis = subject.redis ? await startRedis() : undefined;
  if (redis) env.BENCH_REDIS_URL = redis.url;
  const ports = subject.redis ? [await freePort(), await freePort()] : [await freePort()];
  const names = subject.redis ? ['redis node A', 'redis node B'] : [subject.name];
  const start = (i) => startServer({ ...subject, name: names[i] }, { ...env, BENCH_PORT: String(ports[i]) });
  const servers = [];
  const loads = [];
  const out = { clients: n };
  let publisher;
  let timer;
  try {
    for (let i = 0; i < ports.length; i++) servers.push(await start(i));
    for (let i = 0; i < Math.ceil(n / STORM_PER_LOAD); i++) loads.push(await startLoad(`load ${i + 1}`));
    const share = Math.ceil(n / loads.length);
    await Promise.all(
      loads.map((load, i) =>
        load.call(
          {
            cmd: 'storm-open',
            ports,
            path: '/stream',
            count: Math.min(share, n - i * share),
            offset: i * share,
            concurrency: CONNECT_CONCURRENCY,
          },
          300_000,
        ),
      ),
    );
    await waitConnections({ servers, pids: [] }, n, 60_000);
    // broadcasts from the first server on a fixed schedule; a tick without a live publisher is skipped
    const first = 1;
    let seq = first;
    await Promise.all(loads.map((load) => load.call({ cmd: 'storm-expect', start: first })));
    publisher = servers[0];
    timer = setInterval(() => {
      if (publisher === undefined) return;
      publisher.send({ cmd: 'publish', from: seq, to: seq, start: first, groups: 0, size: EVENT_SIZE });
      seq++;
    }, 1000 / STORM_HZ);
    await sleep(2000);
    const victim = servers.length - 1;
    const graceMs = Number(env.BENCH_DRAIN_MS ?? 1000) + 5000;
    const since = performance.timeOrigin + performance.now();
    if (victim === 0) publisher = undefined;
    servers[victim].send({ cmd: 'exit', graceMs });
    await servers[victim].exited;
    const downMs = performance.timeOrigin + performance.now() - since;
    servers[victim] = await start(victim);
    if (victim === 0) publisher = servers[0];
    const upMs = performance.timeOrigin + performance.now() - since;
    const affected = subject.redis ? Math.floor(n / 2) : n;
    const deadline = performance.now() + 180_000;
    let status;
    for (;;) {
      const all = await Promise.all(loads.map((load) => load.call({ cmd: 'storm-status', since })));
      status = {
        open: sum(all, (s) => s.open),
        reopened: sum(all, (s) => s.reopened),
        max: Math.max(...all.map((s) => s.max ?? 0)),
        p50: Math.max(...all.map((s) => s.p50 ?? 0)),
        p99: Math.max(...all.map((s) => s.p99 ?? 0)),
        failures: sum(all, (s) => s.failures),
        refused: sum(all, (s) => s.refused),
        refusedStatus: sum(all, (s) => s.refusedStatus),
      };
      if ((status.open === n && status.reopened >= affected) || performance.now() > deadline) break;
      await sleep(100);
    }
    await sleep(2000);
    clearInterval(timer);
    timer = undefined;
    const last = seq - 1;
    const ended = await Promise.all(loads.map((load) => load.call({ cmd: 'storm-end', last, timeoutMs: 10_000 }, 30_000)));
    const total = (key) => sum(ended, (e) => e[key]);
    Object.assign(out, {
      restarted: affected,
      events: last - first + 1,
      closedMs: downMs,
      listeningMs: upMs,
      allStreamingMs: status.reopened >= affected && status.open === n ? status.max : null,
      reopenP50Ms: status.p50,
      reopenP99Ms: status.p99,
      failedAttempts: status.failures,
      refusedConnects: status.refused,
      non200: status.refusedStatus,
      repeatExamples: ended.flatMap((e) => e.repeatExamples).slice(0, 5),
      complete: total('complete'),
      gaps: total('gaps'),
      repeats: total('repeats'),
      tailMissing: total('tailMissing'),
      resets: total('resets'),
      lostToReset: total('lost'),
    });
    if (out.allStreamingMs === null)
      out.error = `${status.open} of ${n} streaming, ${status.reopened} of ${affected} reopened after 180 s`;
  } catch (err) {
    out.error = err.message;
  } finally {
    if (timer) clearInterval(timer);
    await Promise.all([...loads.map((l) => l.stop()), ...servers.map((s) => s.stop())]);
    await redis?.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// report

/** The rows of the table: a label, how to read the value from one round, how to print it. */
function rows() {
  const [, middle, large] = CONFIG.sizes;
  const k = (n) => (n >= 1000 ? `${n / 1000}k` : String(n));
  const [slow, fast] = CONFIG.rates;
  const int = (v) => Math.round(v).toLocaleString('en-US');
  const ms = (v) => (v === -1 ? 'behind' : v.toFixed(1));
  return [
    ...CONFIG.sizes.map((n) => ({
      label: `fan-out ${k(n)} conns (deliveries/s)`,
      get: (r) => r.fan?.throughput?.[n]?.rate,
      fmt: int,
    })),
    { label: `server CPU per event ${k(large)} (us)`, get: (r) => r.fan?.throughput?.[large]?.serverCpuPerEventUs, fmt: int },
    { label: `load-gen CPU ${k(large)} (% core)`, get: (r) => r.fan?.throughput?.[large]?.clientCpuPct, fmt: int, noRatio: true },
    { label: `latency ${slow}/s ${k(middle)} p50 (ms)`, get: (r) => r.fan?.latency?.[slow]?.p50, fmt: ms },
    { label: `latency ${slow}/s ${k(middle)} p99 (ms)`, get: (r) => r.fan?.latency?.[slow]?.p99, fmt: ms },
    { label: `latency ${fast}/s ${k(middle)} p50 (ms)`, get: (r) => r.fan?.latency?.[fast]?.p50, fmt: ms },
    { label: `latency ${fast}/s ${k(middle)} p99 (ms)`, get: (r) => r.fan?.latency?.[fast]?.p99, fmt: ms },
    { label: `latency ${fast}/s max (ms)`, get: (r) => r.fan?.latency?.[fast]?.max, fmt: ms },
    { label: `RSS per idle conn (KB)`, get: (r) => r.mem?.idle?.rssPerConnKB, fmt: (v) => v.toFixed(1) },
    { label: `server CPU per stream opened (us)`, get: (r) => r.connect?.cpuPerStreamUs, fmt: int },
    { label: `streams opened per s (${k(CONFIG.connectStreams)}, 256 at a time)`, get: (r) => r.connect?.perSecond, fmt: int },
    {
      label: `filtered 1% of ${k(large)}: all/filtered cost`,
      get: (r) => r.fan?.filtered?.ratio,
      fmt: (v) => `${v.toFixed(1)}x`,
    },
    {
      label: `churn ${k(CONFIG.churn)}: heap delta (%)`,
      get: (r) => r.mem?.churn?.heapDeltaPct,
      fmt: (v) => v.toFixed(1),
      noRatio: true,
    },
    {
      label: `churn: handles before/after`,
      get: (r) => (r.mem?.churn ? r.mem.churn.handlesAfter - r.mem.churn.handlesBefore : undefined),
      show: (list) => {
        const last = list.at(-1)?.mem?.churn;
        return last ? `${last.handlesBefore}/${last.handlesAfter}` : '-';
      },
      noRatio: true,
    },
  ];
}

function median(values) {
  const list = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (list.length === 0) return undefined;
  // "behind" (-1) sorts as the worst latency
  const sorted = [...list].sort((a, b) => (a === -1 ? 1 : b === -1 ? -1 : a - b));
  const low = sorted[Math.floor((sorted.length - 1) / 2)];
  const high = sorted[Math.floor(sorted.length / 2)];
  return low === -1 || high === -1 ? -1 : (low + high) / 2;
}

function summarize(results, names) {
  const table = [];
  for (const row of rows()) {
    const cells = {};
    for (const name of names) {
      const rounds = results[name] ?? [];
      const values = rounds.map(row.get);
      const value = median(values);
      let ratio;
      if (name !== 'baseline' && !row.noRatio) {
        const ratios = rounds.map((r, i) => {
          const own = row.get(r);
          const base = results.baseline?.[i] ? row.get(results.baseline[i]) : undefined;
          return typeof own === 'number' && typeof base === 'number' && own >= 0 && base > 0 ? own / base : undefined;
        });
        ratio = median(ratios);
      }
      cells[name] = { value, ratio, values, text: row.show ? row.show(rounds) : value === undefined ? '-' : row.fmt(value) };
    }
    if (names.some((name) => cells[name].text !== '-')) table.push({ label: row.label, cells });
  }
  return table;
}

function render(table, names) {
  const width = 41;
  // a column fits its subject's name (two spaces apart) and at least a figure with its ratio
  const col = Math.max(22, ...names.map((n) => n.length + 2));
  const lines = [];
  lines.push('scenario'.padEnd(width) + names.map((n) => n.padStart(col)).join(''));
  for (const { label, cells } of table) {
    let line = label.padEnd(width);
    for (const name of names) {
      const cell = cells[name];
      const ratio = cell.ratio === undefined ? '' : ` (${cell.ratio.toFixed(2)}x)`;
      line += (cell.text + ratio).padStart(col);
    }
    lines.push(line);
  }
  return lines.join('\n');
}

function renderStorms(storms) {
  const ms = (v) => (typeof v === 'number' ? `${(v / 1000).toFixed(2)} s` : '-');
  const lines = [];
  for (const [label, r] of Object.entries(storms)) {
    if (r.skipped) {
      lines.push(`${label}: skipped (${r.skipped})`);
      continue;
    }
    if (r.error && r.complete === undefined) {
      lines.push(`${label}: ERROR ${r.error}`);
      continue;
    }
    lines.push(
      `${label}: ${r.restarted} clients of a restarted node; old node closed after ${ms(r.closedMs)}, new one listening after ${ms(r.listeningMs)}; ` +
        `every client streaming again after ${ms(r.allStreamingMs)} (p50 ${ms(r.reopenP50Ms)}, p99 ${ms(r.reopenP99Ms)}); ${r.failedAttempts} failed connects (${r.refusedConnects} refused, ${r.non200} not 200)`,
    );
    lines.push(
      `  ${r.events} events: ${r.complete} of ${r.clients} clients complete; gaps ${r.gaps}, repeats ${r.repeats}, missing at the end ${r.tailMissing}; ` +
        `sse.reset ${r.resets} (events published while away and not in history: ${r.lostToReset})${r.error ? `; ERROR ${r.error}` : ''}`,
    );
  }
  return lines.join('\n');
}

/** This process's open-file limit (its children inherit it). */
function fileLimit() {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} x${cpus.length}`,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    pinned: taskset ? `servers on CPU ${SERVER_CORE}, load generator and runner on CPU ${CLIENT_CORE}` : 'not pinned',
  };
}

// ---------------------------------------------------------------------------------------------
// profile: the largest throughput scenario of one subject, under the V8 sampling profiler

function summarizeProfile(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const self = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  let total = 0;
  for (const [id, count] of counts) {
    const { callFrame } = byId.get(id);
    const url = callFrame.url.replace(/^file:\/\//, '').replace(root + '/', '');
    const key = `${callFrame.functionName || '(anonymous)'} ${url ? `${url}:${callFrame.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + count);
    total += count;
  }
  const lines = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return lines.map(([key, count]) => `${((count / total) * 100).toFixed(1).padStart(5)}%  ${key}`).join('\n');
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  if (!existsSync(join(dist, 'harness.js')))
    throw new Error('test/bench/dist is missing: run `npm run build` first (npm run bench does).');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const started = performance.now();
  const skipped = {};
  const unknown = only?.filter((name) => !SUBJECTS.some((s) => named(s, name))) ?? [];
  if (unknown.length > 0)
    throw new Error(
      `no subject named ${unknown.map((name) => `'${name}'`).join(', ')}; the names: ${SUBJECTS.map((s) => s.name).join(', ')}`,
    );
  let subjects = SUBJECTS.filter(
    (s) => (!only || only.some((name) => named(s, name))) && scenarios.some((scenario) => runs(s, scenario)),
  );
  const redisWhy = redisUnavailable();
  if (redisWhy) {
    for (const s of subjects) if (s.redis) skipped[s.name] = redisWhy;
    subjects = subjects.filter((s) => !s.redis);
  }
  for (const [name, why] of Object.entries(skipped)) console.log(`skipped ${name}: ${why}`);

  const saved = option('report');
  if (saved) {
    // prints the tables of a saved run again
    const run = JSON.parse(readFileSync(saved, 'utf8'));
    // the rows are labelled by the sizes, rates and churn of that run
    Object.assign(CONFIG, { sizes: run.config.sizes, rates: run.config.rates, churn: run.config.churn });
    const names = Object.keys(run.results);
    if (names.length > 0) console.log(render(summarize(run.results, names), names));
    if (run.routed) console.log(renderRouted(run.routed));
    return;
  }

  if (profileSubject) {
    const subject = SUBJECTS.find((s) => named(s, profileSubject));
    if (!subject) throw new Error(`no subject '${profileSubject}'`);
    const connect = scenarios.length === 1 && scenarios[0] === 'connect';
    const file = join(resultsDir, `profile-${connect ? 'connect-' : ''}${subject.name.replace(/\W+/g, '-')}-${stamp}.cpuprofile`);
    const out = connect ? await partConnect(subject, file) : await profileFanOut(subject, file);
    console.log(JSON.stringify({ subject: subject.name, ...out }, null, 2));
    if (existsSync(file)) console.log(`\nself time, top functions (${file.replace(root + '/', '')}):\n${summarizeProfile(file)}`);
    return;
  }

  const machineInfo = machine();
  console.log(
    `nest-sse bench (${QUICK ? 'quick' : 'full'}): scenarios ${scenarios.join(', ')}; ${CONFIG.rounds} round(s), subjects ${subjects.map((s) => s.name).join(', ') || 'none'}`,
  );
  console.log(
    `machine: ${machineInfo.cpu}, ${machineInfo.memoryGB} GB, ${machineInfo.os}, node ${machineInfo.node}; ${machineInfo.pinned}`,
  );
  const results = Object.fromEntries(subjects.map((s) => [s.name, []]));
  const rounded = subjects.filter((s) => ['fanout', 'memory', 'connect'].some((scenario) => runs(s, scenario)));
  let roundsDone = 0;
  let perSubjectMs = 0;
  outer: for (let round = 0; round < (rounded.length ? CONFIG.rounds : 0); round++) {
    for (const subject of rounded) {
      const elapsed = performance.now() - started;
      if (round > 0 && elapsed + perSubjectMs * 1.2 > CONFIG.budgetMs) {
        console.log(`stopping after ${roundsDone} round(s): the time budget (${CONFIG.budgetMs / 1000} s) would be exceeded`);
        // a partial round would have no baseline to compare with
        for (const name of Object.keys(results)) results[name].length = roundsDone;
        break outer;
      }
      const t = performance.now();
      process.stdout.write(`round ${round + 1}: ${subject.name} ... `);
      const fan = runs(subject, 'fanout') ? await partFanOut(subject) : undefined;
      const mem = runs(subject, 'memory') ? await partMemory(subject) : undefined;
      const connect = runs(subject, 'connect') ? await partConnect(subject) : undefined;
      results[subject.name].push({ fan, mem, connect });
      perSubjectMs = Math.max(perSubjectMs, performance.now() - t);
      const errors = [fan?.error, mem?.error, connect?.error].filter(Boolean);
      console.log(`${((performance.now() - t) / 1000).toFixed(1)} s${errors.length ? `  ERROR: ${errors.join('; ')}` : ''}`);
    }
    roundsDone = round + 1;
  }

  const storms = {};
  for (const subject of subjects.filter((s) => runs(s, 'storm'))) {
    for (const n of CONFIG.stormSizes) {
      const label = `${subject.name} ${n}`;
      // a node's sockets and the load generator's each count against the open-file limit
      const perServer = subject.redis ? n / 2 : n;
      if (perServer > fileLimit() - 100) {
        storms[label] = {
          clients: n,
          skipped: `one server process would hold ${perServer} sockets; its open-file limit is ${fileLimit()}`,
        };
        console.log(`storm: ${label}: skipped, ${storms[label].skipped}`);
        continue;
      }
      const t = performance.now();
      process.stdout.write(`storm: ${label} clients ... `);
      storms[label] = await partStorm(subject, n);
      console.log(
        `${((performance.now() - t) / 1000).toFixed(1)} s${storms[label].error ? `  ERROR: ${storms[label].error}` : ''}`,
      );
    }
  }

  let routed;
  if (scenarios.includes('routed')) {
    if (redisWhy) {
      skipped.routed = redisWhy;
    } else {
      const t = performance.now();
      console.log('routed: two clusters (single Stream, routed by user_id) side by side ...');
      const profiles = option('routed-profile')?.split(',') ?? [];
      for (const name of profiles)
        if (!['publisher', 'node'].includes(name))
          throw new Error(`--routed-profile takes 'publisher' and/or 'node', not '${name}'`);
      routed = await partRouted({ startServer, startLoad, startRedis, summarizeProfile }, ROUTED, {
        log: (line) => console.log(`  ${line}`),
        profiles,
        profileFile: (mode, name) => join(resultsDir, `profile-routed-${mode}-${name}-${stamp}.cpuprofile`),
      });
      console.log(`routed: ${((performance.now() - t) / 1000).toFixed(1)} s${routed.error ? `  ERROR: ${routed.error}` : ''}`);
    }
  }

  const names = rounded.map((s) => s.name);
  const table = summarize(results, names);
  const text = render(table, names);
  if (roundsDone > 0) {
    console.log(`\nmedians of ${roundsDone} round(s); (x) = median of the per-round ratio to the baseline\n`);
    console.log(text);
  }
  if (Object.keys(storms).length > 0)
    console.log(`\nreconnect storm (a node restarts; ${STORM_HZ} broadcasts/s throughout)\n\n${renderStorms(storms)}`);
  if (routed) console.log(`\n${renderRouted(routed)}`);
  for (const [name, why] of Object.entries(skipped)) console.log(`\n${name}: skipped, ${why}`);
  const file = join(resultsDir, `bench-${QUICK ? 'quick' : 'full'}-${stamp}.json`);
  const config = {
    ...CONFIG,
    eventSize: EVENT_SIZE,
    windows: CONFIG.sizes.map((n) => ({ connections: n, ...windowFor(n) })),
    groups: GROUPS,
  };
  writeFileSync(
    file,
    JSON.stringify(
      { machine: machineInfo, config, scenarios, rounds: roundsDone, skipped, table, results, storms, routed },
      null,
      2,
    ),
  );
  console.log(`\n${((performance.now() - started) / 1000).toFixed(0)} s; results in ${file.replace(root + '/', '')}`);
}

const hardStop = setTimeout(
  () => {
    console.error('the benchmark ran past its time limit; stopping');
    for (const child of children) child.proc.kill('SIGKILL');
    process.exit(2);
  },
  // each storm takes a minute or two after the rounds; the routed scenario a few minutes
  CONFIG.budgetMs +
    120_000 +
    (scenarios.includes('storm') ? CONFIG.stormSizes.length * 2 * 180_000 : 0) +
    (scenarios.includes('routed') ? 10 * 60_000 : 0),
);
hardStop.unref();

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.all([...children].map((child) => child.stop()));
  });
