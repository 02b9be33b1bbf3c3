// The routed scenario of `npm run bench` (`--scenario=routed`): what routed delivery (`routeBy`)
// buys against the single Stream, side by side in one run. Two clusters of the `nest-sse` subject
// share one redis-server (a prefix each): `single` (no routeBy: every node reads every event) and
// `routed` (`routeBy: 'user_id'`: a node reads only the users its streams hold). Each cluster has
// a publisher node (the same app, holding no stream) and 1 to 4 app nodes; each app node holds one
// stream per user for its own users (`GET /stream?user_id=u<i>`, user i on one node only), opened
// by a load generator of the cluster's own. Every event goes to one user:
// `broadcast({ filter: { user_id: 'u<i>' } })`.
//
// 1. Scaling: app nodes are added one at a time to both clusters; at each size the publisher
//    sends events spread over every user as fast as they are delivered (a closed loop), the two
//    modes one after the other.
// 2. Per node, at the largest size: an idle window, events at a fixed rate spread uniformly over
//    every user, then the same rate to one node's users at a time (so that each node has one phase
//    of only its own events and the others of only events it has no stream for). The phases of
//    the two modes alternate.
//
// Measured per process: CPU (process.cpuUsage over the harness's IPC), bytes read from Redis
// (`ss`: bytes_received of its TCP connections to the redis-server's port), events its streams
// got and envelopes the transport handed it that reached no stream (BENCH_COUNT); for Redis, its
// CPU and calls per command (`INFO`, script-issued commands included). See test/bench/README.md.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { publishClosedLoop, watchFrontier } from './frontier.js';

export const ROUTED_CONFIG = {
  full: {
    nodes: 4,
    users: 1000,
    window: 256,
    warmupSeconds: 0.5,
    seconds: 3,
    rate: 1000,
    events: 6000,
    nodeEvents: 2000,
    idleSeconds: 2,
  },
  quick: {
    nodes: 4,
    users: 500,
    window: 256,
    warmupSeconds: 0.3,
    seconds: 1.5,
    rate: 1000,
    events: 2000,
    nodeEvents: 1000,
    idleSeconds: 1,
  },
};

const EVENT_SIZE = 100;
const CONNECT_CONCURRENCY = 64;
const MODES = [
  { name: 'single', env: { BENCH_REDIS_PREFIX: 'bench_single' } },
  { name: 'routed', env: { BENCH_REDIS_PREFIX: 'bench_routed', BENCH_ROUTE_BY: 'user_id' } },
];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// what Redis and the kernel say

/**
 * redis-server's CPU (µs), bytes written to its clients, and per command its calls and the time
 * spent in them (µs; a script's time includes the commands it issues, which count too).
 */
async function redisCounters(admin) {
  const info = await admin.info('all');
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const calls = {};
  const usec = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1]] = Number(m[2]);
    usec[m[1]] = Number(m[3]);
  }
  return {
    cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    netOut: field('total_net_output_bytes'),
    calls,
    usec,
  };
}

/**
 * What a prefix keeps in Redis: its keys by kind (`events` of a routed value, the prefix's own
 * Stream, publish guards, the rest), the Stream entries and the bytes (`MEMORY USAGE`).
 */
async function census(admin, prefix) {
  const kinds = {};
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `{${prefix}*`, 'COUNT', 1000);
    cursor = next;
    const pipeline = admin.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0').type(key);
    const replies = await pipeline.exec();
    const lengths = admin.pipeline();
    const streams = [];
    keys.forEach((key, i) => {
      const kind = key.startsWith(`{${prefix}/`)
        ? key.endsWith(':events')
          ? 'value streams'
          : key.includes(':pub:')
            ? 'value publish guards'
            : 'other value keys'
        : key.endsWith(':events')
          ? 'prefix stream'
          : 'other prefix keys';
      kinds[kind] ??= { keys: 0, bytes: 0, entries: 0 };
      kinds[kind].keys++;
      kinds[kind].bytes += Number(replies[2 * i][1] ?? 0);
      if (replies[2 * i + 1][1] === 'stream') {
        lengths.xlen(key);
        streams.push(kind);
      }
    });
    const xlens = await lengths.exec();
    streams.forEach((kind, i) => (kinds[kind].entries += Number(xlens[i][1] ?? 0)));
  } while (cursor !== '0');
  return kinds;
}

let ssMissing = false;

/**
 * Bytes each process has read from the redis-server on `port` over its open connections (the
 * kernel's tcp_info `bytes_received`), by pid; undefined when `ss` cannot tell.
 */
function bytesFromRedis(port) {
  if (ssMissing) return undefined;
  let out;
  try {
    out = execFileSync('ss', ['-tinpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  } catch (err) {
    console.error(`bytes read from Redis are not measured (ss: ${err.message})`);
    ssMissing = true;
    return undefined;
  }
  const byPid = new Map();
  let pid;
  // one line per socket naming its process, then an indented line of tcp_info
  for (const line of out.split('\n')) {
    if (/^\S/.test(line)) pid = Number(/pid=(\d+)/.exec(line)?.[1]);
    else if (pid) {
      const bytes = Number(/bytes_received:(\d+)/.exec(line)?.[1] ?? 0);
      byPid.set(pid, (byPid.get(pid) ?? 0) + bytes);
    }
  }
  return byPid;
}

// ---------------------------------------------------------------------------------------------
// measurements

/** Everything measured at one moment: per process (app nodes, then the publisher) and Redis. */
async function snapshot(cluster) {
  const procs = [...cluster.nodes, cluster.publisher];
  const [stats, redis] = await Promise.all([
    Promise.all(procs.map((p) => p.call({ cmd: 'stats' }, 30_000))),
    redisCounters(cluster.admin),
  ]);
  const bytes = bytesFromRedis(cluster.redisPort);
  return {
    at: performance.now(),
    procs: stats.map((s, i) => ({
      cpuUs: s.cpu.user + s.cpu.system,
      threads: threadCpu(procs[i].proc.pid),
      bytes: bytes?.get(procs[i].proc.pid),
      delivered: s.extra.delivered,
      received: s.extra.received,
      unmatched: s.extra.unmatched,
      connections: s.connections,
      transport: s.extra.transport,
    })),
    redis,
  };
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * A process's CPU by thread (µs, from /proc at the kernel's tick): the main thread's user and
 * system time, and the other threads' (V8's GC and compiler helpers, libuv's pool).
 */
function threadCpu(pid) {
  const out = { mainUser: 0, mainSystem: 0, others: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // utime and stime are the 12th and 13th fields after the command name (in brackets)
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [user, system] = [Number(fields[11]), Number(fields[12])].map((t) => (t * 1e6) / CLOCK_TICKS);
      if (tid === String(pid)) Object.assign(out, { mainUser: user, mainSystem: system });
      else out.others += user + system;
    }
  } catch {
    // a thread ended while it was read
  }
  return out;
}

/** What happened between two snapshots. */
function between(before, after) {
  const calls = {};
  const usec = {};
  for (const [cmd, n] of Object.entries(after.redis.calls)) {
    const d = n - (before.redis.calls[cmd] ?? 0);
    if (d > 0) {
      calls[cmd] = d;
      usec[cmd] = after.redis.usec[cmd] - (before.redis.usec[cmd] ?? 0);
    }
  }
  return {
    seconds: (after.at - before.at) / 1000,
    procs: after.procs.map((p, i) => {
      const b = before.procs[i];
      return {
        cpuUs: p.cpuUs - b.cpuUs,
        threads: Object.fromEntries(Object.entries(p.threads).map(([k, v]) => [k, v - b.threads[k]])),
        bytes: p.bytes === undefined || b.bytes === undefined ? undefined : p.bytes - b.bytes,
        delivered: p.delivered - b.delivered,
        received: p.received - b.received,
        unmatched: p.unmatched - b.unmatched,
        gaps: (p.transport?.gaps ?? 0) - (b.transport?.gaps ?? 0),
        routedValues: p.transport?.routed_values,
      };
    }),
    redis: { cpuUs: after.redis.cpuUs - before.redis.cpuUs, netOut: after.redis.netOut - before.redis.netOut, calls, usec },
  };
}

function sum(list, f) {
  return list.reduce((total, item) => total + (f(item) ?? 0), 0);
}

/** A phase whose figures cannot be trusted fails the scenario. */
function check(what, phase, timedOut) {
  const problems = [];
  if (timedOut) problems.push('timed out');
  if (phase.missing > 0) problems.push(`${phase.missing} of ${phase.owed} deliveries missing`);
  if (phase.outOfOrder > 0) problems.push(`${phase.outOfOrder} events repeated, out of order or to the wrong stream`);
  if (phase.unexpectedCloses > 0) problems.push(`${phase.unexpectedCloses} streams closed by the server`);
  if (problems.length > 0) throw new Error(`${what}: ${problems.join(', ')}`);
}

/** Where event `seq` goes, for the publisher (by name) and the load generator (by stream). */
async function aim(cluster, start, count, targets) {
  await cluster.publisher.call({ cmd: 'targets', names: targets.map((i) => `u${i}`) });
  await cluster.load.call({ cmd: 'phase', start, count, groups: 0, targets });
}

/**
 * Publishes as fast as the events are delivered: at most `window` events in flight (published and
 * not yet received), given to the publisher a quarter of the window at a time.
 */
async function closedLoop(cluster, { seconds, window, targets }) {
  const capacity = 1 << 20;
  const start = cluster.seq;
  await aim(cluster, start, capacity, targets);
  const before = await snapshot(cluster);
  const { published, timedOut, ms } = await publishClosedLoop({
    load: cluster.load,
    publisher: cluster.publisher,
    start,
    capacity,
    window,
    batch: Math.max(1, Math.floor(window / 4)),
    seconds,
    groups: 0,
    size: EVENT_SIZE,
  });
  const after = await snapshot(cluster);
  const phase = await cluster.load.call({ cmd: 'end-phase', published });
  cluster.seq = start + published;
  check(`${cluster.mode.name}, ${cluster.nodes.length} node(s), closed loop`, phase, timedOut);
  return {
    events: published,
    seconds: ms / 1000,
    rate: published / (ms / 1000),
    p50: phase.p50,
    p99: phase.p99,
    cost: between(before, after),
  };
}

/** `count` events at `hz` from the publisher's own timer, to `targets` in turn. */
async function steady(cluster, { hz, count, targets }) {
  const start = cluster.seq;
  await aim(cluster, start, count, targets);
  const before = await snapshot(cluster);
  const arrived = watchFrontier(cluster.load, (frontier) => frontier >= count, (count / hz) * 1000 + 15_000);
  cluster.publisher.send({ cmd: 'rate', from: start, count, hz, size: EVENT_SIZE, start });
  const timedOut = await arrived;
  const after = await snapshot(cluster);
  const phase = await cluster.load.call({ cmd: 'end-phase', published: count });
  cluster.seq = start + count;
  check(`${cluster.mode.name}, ${count} events at ${hz}/s`, phase, timedOut);
  return { events: count, p50: phase.p50, p99: phase.p99, max: phase.max, cost: between(before, after) };
}

async function idle(cluster, seconds) {
  const before = await snapshot(cluster);
  await sleep(seconds * 1000);
  return { cost: between(before, await snapshot(cluster)) };
}

/** A fixed shuffle (so both modes get the same order): the list of 0..n-1, or of `items`. */
function shuffled(items, seed = 1) {
  const list = [...items];
  let state = seed;
  for (let i = list.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

// ---------------------------------------------------------------------------------------------
// the scenario

/**
 * Runs the scenario. `tools` are the runner's: `startServer(subject, env)`, `startLoad(name)`,
 * `startRedis()`, `summarizeProfile(file)`. `profiles` lists processes ('publisher', 'node': the
 * first app node) to profile, each through one more uniform phase per mode at the largest size,
 * written to `profileFile(mode, process)`.
 */
export async function partRouted(tools, config, { log = () => undefined, profiles = [], profileFile } = {}) {
  const redis = await tools.startRedis();
  const redisPort = Number(new URL(redis.url).port);
  const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  const clusters = [];
  const out = { config, scaling: [], connect: [], workload: undefined };
  try {
    await admin.connect();
    for (const mode of MODES) {
      const env = { ...mode.env, BENCH_REDIS_URL: redis.url, BENCH_FILTER_KEY: 'user_id', BENCH_COUNT: '1' };
      const [publisher, load] = await Promise.all([
        tools.startServer({ name: `${mode.name} publisher`, script: 'nest-sse.js' }, env),
        tools.startLoad(`${mode.name} load`),
      ]);
      clusters.push({ mode, env, publisher, load, nodes: [], seq: 1, redisPort, admin });
    }

    // 1. scaling, and the cost of opening a stream in each mode
    for (let n = 1; n <= config.nodes; n++) {
      for (const cluster of clusters)
        out.connect.push({ mode: cluster.mode.name, node: n, ...(await addNode(tools, cluster, config)) });
      const targets = shuffled(range(0, n * config.users), n);
      const order = n % 2 === 1 ? clusters : [...clusters].reverse();
      for (const cluster of order) {
        await closedLoop(cluster, { seconds: config.warmupSeconds, window: config.window, targets });
        const result = await closedLoop(cluster, { seconds: config.seconds, window: config.window, targets });
        out.scaling.push({ mode: cluster.mode.name, nodes: n, ...result });
        log(`${cluster.mode.name}, ${n} node(s): ${Math.round(result.rate)} events/s`);
      }
    }

    // 2. per node, at the largest size: the phases of the two modes alternate
    const nodes = config.nodes;
    const all = shuffled(range(0, nodes * config.users), 7);
    const workload = Object.fromEntries(clusters.map((c) => [c.mode.name, { idle: undefined, uniform: undefined, own: [] }]));
    for (const cluster of clusters) workload[cluster.mode.name].idle = await idle(cluster, config.idleSeconds);
    for (const cluster of clusters) {
      workload[cluster.mode.name].uniform = await steady(cluster, { hz: config.rate, count: config.events, targets: all });
      log(`${cluster.mode.name}: ${config.events} events at ${config.rate}/s to every user`);
    }
    for (let k = 0; k < nodes; k++) {
      const users = shuffled(range(k * config.users, (k + 1) * config.users), k + 11);
      for (const cluster of clusters) {
        workload[cluster.mode.name].own.push(
          await steady(cluster, { hz: config.rate, count: config.nodeEvents, targets: users }),
        );
      }
      log(`node ${k + 1}'s users only: done`);
    }
    out.workload = workload;
    out.perNode = Object.fromEntries(clusters.map((c) => [c.mode.name, perNode(workload[c.mode.name], nodes)]));

    out.redisKeys = {};
    for (const cluster of clusters) out.redisKeys[cluster.mode.name] = await census(admin, cluster.env.BENCH_REDIS_PREFIX);

    // profiles at the fixed rate: in a closed loop the core is saturated and the sampler starves
    out.profiles = [];
    for (const name of profiles) {
      for (const cluster of clusters) {
        const index = name === 'publisher' ? cluster.nodes.length : 0;
        const target = name === 'publisher' ? cluster.publisher : cluster.nodes[0];
        const file = profileFile(cluster.mode.name, name);
        await target.call({ cmd: 'profile', action: 'start' });
        const result = await steady(cluster, { hz: config.rate, count: config.events, targets: all });
        await target.call({ cmd: 'profile', action: 'stop', file });
        const cpuPct = result.cost.procs[index].cpuUs / result.cost.seconds / 1e4;
        out.profiles.push({ mode: cluster.mode.name, process: name, file, cpuPct, top: tools.summarizeProfile(file) });
      }
    }
  } catch (err) {
    out.error = err.message;
  } finally {
    await Promise.all(clusters.flatMap((c) => [c.load.stop(), c.publisher.stop(), ...c.nodes.map((node) => node.stop())]));
    admin.disconnect();
    await redis.stop();
  }
  return out;
}

/** Starts an app node in a cluster and opens its users' streams; returns what opening them cost. */
async function addNode(tools, cluster, config) {
  const index = cluster.nodes.length;
  const node = await tools.startServer({ name: `${cluster.mode.name} node ${index + 1}`, script: 'nest-sse.js' }, cluster.env);
  cluster.nodes.push(node);
  const before = await snapshot(cluster);
  const t0 = performance.now();
  const opened = await cluster.load.call(
    {
      cmd: 'connect',
      ports: [node.port],
      path: '/stream',
      count: (index + 1) * config.users,
      concurrency: CONNECT_CONCURRENCY,
      key: 'user_id',
      prefix: 'u',
    },
    300_000,
  );
  if (opened.failed > 0) throw new Error(`${opened.failed} of ${config.users} streams failed to open: ${opened.firstError}`);
  for (let waited = 0; ; waited += 100) {
    const { connections } = await node.call({ cmd: 'stats' });
    if (connections === config.users) break;
    if (waited > 30_000)
      throw new Error(`${cluster.mode.name} node ${index + 1} holds ${connections} streams, not ${config.users}`);
    await sleep(100);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cost = between(before, await snapshot(cluster));
  return {
    streams: config.users,
    perSecond: config.users / seconds,
    nodeCpuPerStreamUs: cost.procs[index].cpuUs / config.users,
    redisCpuPerStreamUs: cost.redis.cpuUs / config.users,
    redisCallsPerStream: sum(Object.values(cost.redis.calls), (n) => n) / config.users,
  };
}

/**
 * Per app node: CPU and bytes per event it delivers (the phase of its own users) against per event
 * it has no stream for (the other nodes' phases), each net of its idle rate; and the uniform phase.
 */
function perNode(workload, nodes) {
  const idleCost = workload.idle.cost;
  const net = (phase, i, key) => {
    const value = phase.cost.procs[i][key];
    if (value === undefined) return undefined;
    const rate = idleCost.procs[i][key] / idleCost.seconds;
    return value - rate * phase.cost.seconds;
  };
  return range(0, nodes).map((i) => {
    const own = workload.own[i];
    const others = workload.own.filter((_, k) => k !== i);
    const foreignEvents = sum(others, (p) => p.events);
    const per = (key, phases, events) => {
      const values = phases.map((p) => net(p, i, key));
      return values.includes(undefined) ? undefined : values.reduce((a, b) => a + b, 0) / events;
    };
    const ownCpu = per('cpuUs', [own], own.events);
    const foreignCpu = per('cpuUs', others, foreignEvents);
    const ownBytes = per('bytes', [own], own.events);
    const foreignBytes = per('bytes', others, foreignEvents);
    const uniform = workload.uniform.cost.procs[i];
    return {
      node: i + 1,
      delivered: uniform.delivered,
      noRecipient: uniform.unmatched,
      notRead: workload.uniform.events - uniform.received,
      cpuMs: uniform.cpuUs / 1000,
      bytes: uniform.bytes,
      ownCpuUs: ownCpu,
      foreignCpuUs: foreignCpu,
      cpuRatio: foreignCpu / ownCpu,
      ownBytes,
      foreignBytes,
      bytesRatio: ownBytes === undefined ? undefined : foreignBytes / ownBytes,
      ownDelivered: own.cost.procs[i].delivered,
      foreignDelivered: sum(others, (p) => p.cost.procs[i].delivered),
      gaps: uniform.gaps,
      followed: uniform.routedValues,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// report

const int = (v) => (v === undefined || !Number.isFinite(v) ? '-' : Math.round(v).toLocaleString('en-US'));
const fixed = (v, d = 1) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));
const ratio = (a, b) => (a === undefined || b === undefined || !(b > 0) ? '-' : `${(a / b).toFixed(2)}x`);

function table(head, rows) {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) =>
    cells.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** The figures of one phase summed over processes, per event. */
function totals(phase) {
  const { procs, redis } = phase.cost;
  const nodes = procs.slice(0, -1);
  const publisher = procs.at(-1);
  const events = phase.events;
  const busiest = Math.max(...nodes.map((p) => p.cpuUs)) / events;
  const publisherCpuUs = publisher.cpuUs / events;
  const redisCpuUs = redis.cpuUs / events;
  // with a core for each app node and for Redis, the one that spends the most per event sets the
  // pace (publishing is left out: an app spreads it over the nodes that publish)
  const limit = busiest >= redisCpuUs ? ['a node', busiest] : ['redis', redisCpuUs];
  return {
    nodesCpuUs: sum(nodes, (p) => p.cpuUs) / events,
    busiestNodeCpuUs: busiest,
    publisherCpuUs,
    redisCpuUs,
    totalCpuUs: (sum(procs, (p) => p.cpuUs) + redis.cpuUs) / events,
    projected: 1e6 / limit[1],
    limitedBy: limit[0],
    nodesBytes: nodes.some((p) => p.bytes === undefined) ? undefined : sum(nodes, (p) => p.bytes) / events,
    redisCalls: sum(Object.values(redis.calls), (n) => n) / events,
    evalsha: (redis.calls.evalsha ?? 0) / events,
    calls: redis.calls,
    usec: redis.usec,
  };
}

const pct = (us, seconds) => `${fixed(us / seconds / 1e4, 2)}%`;

function renderScaling(out) {
  const { config } = out;
  const rows = [];
  for (let n = 1; n <= config.nodes; n++) {
    const single = out.scaling.find((r) => r.mode === 'single' && r.nodes === n);
    const routed = out.scaling.find((r) => r.mode === 'routed' && r.nodes === n);
    for (const r of [single, routed]) {
      if (!r) continue;
      const t = totals(r);
      const vs = (f) => (r === routed && single ? ratio(f(r), f(single)) : '');
      rows.push([
        `${n} node(s), ${r.mode}`,
        int(r.rate),
        vs((x) => x.rate),
        fixed(r.p50),
        fixed(r.p99),
        fixed(t.nodesCpuUs),
        fixed(t.busiestNodeCpuUs),
        fixed(t.publisherCpuUs),
        fixed(t.redisCpuUs),
        fixed(t.totalCpuUs),
        vs((x) => totals(x).totalCpuUs),
        int(t.nodesBytes),
        fixed(t.redisCalls),
        `${int(t.projected)} (${t.limitedBy})`,
      ]);
    }
  }
  return [
    '',
    `1. scaling: closed loop (at most ${config.window} events in flight), ${config.seconds} s per size; every process of both clusters and redis-server share the server core`,
    "CPU in µs per event, bytes read from Redis by the app nodes per event; projected = 1 s / (the busiest app node's or redis-server's CPU per event, the larger): a core for each",
    table(
      [
        '',
        'events/s',
        'routed/single',
        'p50 ms',
        'p99 ms',
        'nodes',
        'busiest node',
        'publisher',
        'redis',
        'total',
        'routed/single',
        'node bytes',
        'redis calls',
        'projected events/s (limit)',
      ],
      rows,
    ),
  ];
}

function renderConnect(out) {
  const mean = (mode, key) => {
    const list = out.connect.filter((c) => c.mode === mode);
    return sum(list, (c) => c[key]) / list.length;
  };
  return [
    '',
    `opening a stream (${out.config.users} per node, ${CONNECT_CONCURRENCY} at a time; mean over the nodes):`,
    ...MODES.map(
      (m) =>
        `  ${m.name}: ${fixed(mean(m.name, 'nodeCpuPerStreamUs'), 0)} µs node CPU + ${fixed(mean(m.name, 'redisCpuPerStreamUs'), 0)} µs Redis CPU, ${fixed(mean(m.name, 'redisCallsPerStream'))} Redis calls per stream; ${int(mean(m.name, 'perSecond'))} streams/s`,
    ),
  ];
}

function renderWorkload(out) {
  const { config, workload: w } = out;
  const lines = [
    '',
    `2. ${config.nodes} nodes: ${config.events} events at ${config.rate}/s spread over all ${config.nodes * config.users} users (uniform), then ${config.nodeEvents} at ${config.rate}/s to one node's users at a time`,
    'uniform: values followed (routed), events delivered, envelopes read that reached no stream (no recipient), events not read at all; CPU and bytes read from Redis.',
    "own/other: CPU (µs) and bytes per event the node delivers / per event for another node's users, net of its idle rate",
  ];
  const rows = [];
  for (const mode of MODES) {
    for (const n of out.perNode[mode.name]) {
      rows.push([
        `${mode.name} node ${n.node}`,
        int(n.followed),
        int(n.delivered),
        int(n.noRecipient),
        int(n.notRead),
        fixed(n.cpuMs, 0),
        int(n.bytes),
        fixed(n.ownCpuUs),
        fixed(n.foreignCpuUs),
        fixed(n.cpuRatio, 3),
        int(n.ownBytes),
        int(n.foreignBytes),
        fixed(n.bytesRatio, 3),
      ]);
    }
  }
  lines.push(
    table(
      [
        '',
        'followed',
        'delivered',
        'no recipient',
        'not read',
        'CPU ms',
        'bytes',
        'own µs',
        'other µs',
        'other/own',
        'own B',
        'other B',
        'other/own',
      ],
      rows,
    ),
  );
  const rows2 = [];
  for (const mode of MODES) {
    const u = w[mode.name].uniform;
    const t = totals(u);
    const idle = w[mode.name].idle.cost;
    const nodes = idle.procs.slice(0, -1);
    rows2.push([
      mode.name,
      fixed(u.p50),
      fixed(u.p99),
      fixed(t.nodesCpuUs),
      fixed(t.publisherCpuUs),
      fixed(t.redisCpuUs),
      fixed(t.totalCpuUs),
      int(t.nodesBytes),
      int(u.cost.procs.at(-1).bytes === undefined ? undefined : u.cost.procs.at(-1).bytes / u.events),
      fixed(t.redisCalls),
      fixed(t.evalsha, 2),
      pct(sum(nodes, (p) => p.cpuUs) / nodes.length, idle.seconds),
      pct(idle.procs.at(-1).cpuUs, idle.seconds),
    ]);
  }
  const [s, r] = MODES.map((m) => totals(w[m.name].uniform));
  rows2.push([
    'routed/single',
    '',
    '',
    ratio(r.nodesCpuUs, s.nodesCpuUs),
    ratio(r.publisherCpuUs, s.publisherCpuUs),
    ratio(r.redisCpuUs, s.redisCpuUs),
    ratio(r.totalCpuUs, s.totalCpuUs),
    ratio(r.nodesBytes, s.nodesBytes),
    '',
    ratio(r.redisCalls, s.redisCalls),
    '',
    '',
    '',
  ]);
  lines.push(
    '',
    'uniform, per event: CPU (µs) and bytes read from Redis; idle: % of a core before the phases (a node, mean; the publisher)',
    table(
      [
        '',
        'p50 ms',
        'p99 ms',
        'nodes CPU',
        'publisher CPU',
        'redis CPU',
        'total CPU',
        'node bytes',
        'publisher bytes',
        'redis calls',
        'evalsha',
        'idle node',
        'idle publisher',
      ],
      rows2,
    ),
    '',
    'where the CPU went (uniform; /proc per thread): main thread in user mode / in the kernel / other threads (GC, compiler)',
  );
  for (const mode of MODES) {
    const procs = w[mode.name].uniform.cost.procs;
    const split = (list) => {
      const total = sum(list, (p) => p.threads.mainUser + p.threads.mainSystem + p.threads.others);
      const share = (f) => `${fixed((sum(list, f) / total) * 100, 0)}%`;
      return `${share((p) => p.threads.mainUser)} / ${share((p) => p.threads.mainSystem)} / ${share((p) => p.threads.others)}`;
    };
    lines.push(`  ${mode.name}: app nodes ${split(procs.slice(0, -1))}; publisher ${split(procs.slice(-1))}`);
  }
  lines.push(
    '',
    'Redis per event (uniform), by command: calls (µs inside it; a script includes what it issues, which also count):',
  );
  for (const mode of MODES) {
    const { calls, usec } = totals(w[mode.name].uniform);
    const events = w[mode.name].uniform.events;
    const per = Object.entries(calls)
      .filter(([, n]) => n / events >= 0.01)
      .sort((a, b) => usec[b[0]] - usec[a[0]])
      .map(([cmd, n]) => `${cmd} ${fixed(n / events, 2)} (${fixed(usec[cmd] / events)})`)
      .join(', ');
    lines.push(`  ${mode.name}: ${per}`);
  }
  return lines;
}

function renderKeys(out) {
  const lines = ['', 'what each prefix keeps in Redis at the end (MEMORY USAGE):'];
  for (const [mode, kinds] of Object.entries(out.redisKeys)) {
    const parts = Object.entries(kinds).map(
      ([kind, k]) =>
        `${kind}: ${int(k.keys)} keys, ${fixed(k.bytes / 2 ** 20, 2)} MB` +
        (k.entries > 0 ? `, ${int(k.entries)} entries (${int(k.bytes / k.entries)} B each, key included)` : ''),
    );
    lines.push(`  ${mode}: ${parts.join('; ')}`);
  }
  return lines;
}

export function renderRouted(out) {
  const { config } = out;
  const lines = [
    `routed scenario: up to ${config.nodes} app nodes, ${config.users} users per node (one stream each), one publisher node per mode, one redis-server; ${EVENT_SIZE}-byte events, each to one user`,
  ];
  if (out.error) lines.push(`ERROR: ${out.error}`);
  if (out.scaling.length > 0) lines.push(...renderScaling(out));
  if (out.connect.length > 0) lines.push(...renderConnect(out));
  if (out.perNode) lines.push(...renderWorkload(out));
  if (out.redisKeys) lines.push(...renderKeys(out));
  for (const p of out.profiles ?? []) {
    lines.push(
      '',
      `profile of the ${p.process}, ${p.mode}, uniform phase (${fixed(p.cpuPct)}% of a core while profiled; ${relative(process.cwd(), p.file)}):`,
      p.top,
    );
  }
  return lines.join('\n');
}
