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
import net from 'node:net';
import { performance } from 'node:perf_hooks';

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

/** One command to the redis-server on its own connection; resolves with the bulk string reply. */
function redisBulk(port, command) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let length = 0;
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      length += chunk.length;
      const data = Buffer.concat(chunks, length);
      const header = /^\$(\d+)\r\n/.exec(data.latin1Slice(0, 32));
      if (header && data.length >= header[0].length + Number(header[1]) + 2) {
        socket.destroy();
        resolve(data.toString('utf8', header[0].length, header[0].length + Number(header[1])));
      }
    });
    socket.on('error', reject);
  });
}

/**
 * redis-server's CPU (µs), bytes written to its clients, and per command its calls and the time
 * spent in them (µs; a script's time includes the commands it issues, which count too).
 */
async function redisCounters(port) {
  const info = await redisBulk(port, 'INFO all');
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
    redisCounters(cluster.redisPort),
  ]);
  const bytes = bytesFromRedis(cluster.redisPort);
  return {
    at: performance.now(),
    procs: stats.map((s, i) => ({
      cpuUs: s.cpu.user + s.cpu.system,
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
  const batch = Math.max(1, Math.floor(window / 4));
  const capacity = 1 << 20;
  const start = cluster.seq;
  const { load, publisher } = cluster;
  await aim(cluster, start, capacity, targets);
  const before = await snapshot(cluster);
  const t0 = performance.now();
  let published = 0;
  let timedOut = false;
  await new Promise((resolve) => {
    const issue = (n) => {
      n = Math.min(n, capacity - published);
      if (n <= 0) return;
      const from = start + published;
      publisher.send({ cmd: 'publish', from, to: from + n - 1, start, groups: 0, size: EVENT_SIZE });
      published += n;
    };
    const finish = () => {
      clearTimeout(timer);
      load.onMessage = undefined;
      resolve();
    };
    const timer = setTimeout(
      () => {
        timedOut = true;
        finish();
      },
      seconds * 1000 + 30_000,
    );
    load.onMessage = (message) => {
      if (message.type !== 'frontier') return;
      if (performance.now() - t0 < seconds * 1000) {
        while (published - message.value <= window - batch && published < capacity) issue(batch);
      } else if (message.value >= published) {
        finish();
      }
    };
    issue(window);
  });
  const elapsed = (performance.now() - t0) / 1000;
  const after = await snapshot(cluster);
  const phase = await load.call({ cmd: 'end-phase', published });
  cluster.seq = start + published;
  check(`${cluster.mode.name}, ${cluster.nodes.length} node(s), closed loop`, phase, timedOut);
  return {
    events: published,
    seconds: elapsed,
    rate: published / elapsed,
    p50: phase.p50,
    p99: phase.p99,
    cost: between(before, after),
  };
}

/** `count` events at `hz` from the publisher's own timer, to `targets` in turn. */
async function steady(cluster, { hz, count, targets }) {
  const start = cluster.seq;
  const { load, publisher } = cluster;
  await aim(cluster, start, count, targets);
  const before = await snapshot(cluster);
  let timedOut = false;
  await new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      load.onMessage = undefined;
      resolve();
    };
    const timer = setTimeout(
      () => {
        timedOut = true;
        finish();
      },
      (count / hz) * 1000 + 15_000,
    );
    load.onMessage = (message) => {
      if (message.type === 'frontier' && message.value >= count) finish();
    };
    publisher.send({ cmd: 'rate', from: start, count, hz, size: EVENT_SIZE, start });
  });
  const after = await snapshot(cluster);
  const phase = await load.call({ cmd: 'end-phase', published: count });
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
 * `startRedis()`, `summarizeProfile(file)`; `profile` names a process to profile in one extra
 * closed loop per mode at the largest size ('publisher' or 'node'), written to `profileFile(mode)`.
 */
export async function partRouted(tools, config, { log = () => undefined, profile, profileFile } = {}) {
  const redis = await tools.startRedis();
  const redisPort = Number(new URL(redis.url).port);
  const clusters = [];
  const out = { config, scaling: [], connect: [], workload: undefined };
  try {
    for (const mode of MODES) {
      const env = { ...mode.env, BENCH_REDIS_URL: redis.url, BENCH_FILTER_KEY: 'user_id', BENCH_COUNT: '1' };
      const [publisher, load] = await Promise.all([
        tools.startServer({ name: `${mode.name} publisher`, script: 'nest-sse.js' }, env),
        tools.startLoad(`${mode.name} load`),
      ]);
      clusters.push({ mode, env, publisher, load, nodes: [], seq: 1, redisPort });
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

    if (profile) {
      out.profiles = {};
      for (const cluster of clusters) {
        const target = profile === 'publisher' ? cluster.publisher : cluster.nodes[0];
        const file = profileFile(cluster.mode.name);
        await target.call({ cmd: 'profile', action: 'start' });
        const result = await closedLoop(cluster, { seconds: config.seconds, window: config.window, targets: all });
        await target.call({ cmd: 'profile', action: 'stop', file });
        out.profiles[cluster.mode.name] = { file, rate: result.rate, top: tools.summarizeProfile(file) };
      }
    }
  } catch (err) {
    out.error = err.message;
  } finally {
    await Promise.all(clusters.flatMap((c) => [c.load.stop(), c.publisher.stop(), ...c.nodes.map((node) => node.stop())]));
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
  return {
    nodesCpuUs: sum(nodes, (p) => p.cpuUs) / events,
    publisherCpuUs: publisher.cpuUs / events,
    redisCpuUs: redis.cpuUs / events,
    totalCpuUs: (sum(procs, (p) => p.cpuUs) + redis.cpuUs) / events,
    nodesBytes: nodes.some((p) => p.bytes === undefined) ? undefined : sum(nodes, (p) => p.bytes) / events,
    redisCalls: sum(Object.values(redis.calls), (n) => n) / events,
    evalsha: (redis.calls.evalsha ?? 0) / events,
    calls: redis.calls,
    usec: redis.usec,
  };
}

export function renderRouted(out) {
  const lines = [];
  const { config } = out;
  lines.push(
    `routed scenario: up to ${config.nodes} app nodes, ${config.users} users per node (one stream each), one publisher node per mode, one redis-server; ${EVENT_SIZE}-byte events, each to one user`,
  );
  if (out.error) lines.push(`ERROR: ${out.error}`);
  if (out.scaling.length > 0) {
    lines.push(
      '',
      `1. closed loop (at most ${config.window} events in flight), ${config.seconds} s per size; CPU per event in µs`,
    );
    const rows = [];
    for (let n = 1; n <= config.nodes; n++) {
      const single = out.scaling.find((r) => r.mode === 'single' && r.nodes === n);
      const routed = out.scaling.find((r) => r.mode === 'routed' && r.nodes === n);
      for (const r of [single, routed]) {
        if (!r) continue;
        const t = totals(r);
        rows.push([
          `${n} node(s), ${r.mode}`,
          int(r.rate),
          r === routed ? ratio(routed.rate, single?.rate) : '',
          fixed(r.p50),
          fixed(r.p99),
          fixed(t.nodesCpuUs),
          fixed(t.publisherCpuUs),
          fixed(t.redisCpuUs),
          fixed(t.totalCpuUs),
          r === routed ? ratio(t.totalCpuUs, single && totals(single).totalCpuUs) : '',
          int(t.nodesBytes),
          fixed(t.redisCalls),
        ]);
      }
    }
    lines.push(
      table(
        [
          '',
          'events/s',
          'routed/single',
          'p50 ms',
          'p99 ms',
          'nodes',
          'publisher',
          'redis',
          'total',
          'routed/single',
          'node bytes',
          'redis calls',
        ],
        rows,
      ),
    );
  }
  if (out.connect.length > 0) {
    const mean = (mode, key) => {
      const list = out.connect.filter((c) => c.mode === mode);
      return sum(list, (c) => c[key]) / list.length;
    };
    lines.push(
      '',
      `opening a stream (${config.users} per node, ${CONNECT_CONCURRENCY} at a time; mean over the nodes): ` +
        MODES.map(
          (m) =>
            `${m.name} ${fixed(mean(m.name, 'nodeCpuPerStreamUs'), 0)} µs node CPU + ${fixed(mean(m.name, 'redisCpuPerStreamUs'), 0)} µs Redis, ${fixed(mean(m.name, 'redisCallsPerStream'))} Redis calls, ${int(mean(m.name, 'perSecond'))} streams/s`,
        ).join('; '),
    );
  }
  if (out.perNode) {
    const w = out.workload;
    lines.push(
      '',
      `2. ${config.nodes} nodes, ${config.events} events at ${config.rate}/s spread over all ${config.nodes * config.users} users; then ${config.nodeEvents} at ${config.rate}/s to one node's users at a time`,
      "per event it delivers (own) and per event for another node's users (other), net of the idle rate:",
    );
    const rows = [];
    for (const mode of MODES) {
      for (const n of out.perNode[mode.name]) {
        rows.push([
          `${mode.name} node ${n.node}`,
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
          'uniform phase:',
          'delivered',
          'no recipient',
          'not read',
          'CPU ms',
          'bytes read',
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
      const publisher = u.cost.procs.at(-1);
      rows2.push([
        mode.name,
        fixed(u.p50),
        fixed(u.p99),
        fixed(t.nodesCpuUs),
        fixed(t.publisherCpuUs),
        fixed(t.redisCpuUs),
        fixed(t.totalCpuUs),
        int(t.nodesBytes),
        int(publisher.bytes === undefined ? undefined : publisher.bytes / u.events),
        fixed(t.redisCalls),
        fixed(t.evalsha, 2),
        fixed(w[mode.name].idle.cost.procs.at(-1).cpuUs / w[mode.name].idle.cost.seconds / 1e4, 2),
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
    ]);
    lines.push(
      '',
      'uniform phase, per event (CPU in µs, bytes read from Redis):',
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
          'publisher idle % core',
        ],
        rows2,
      ),
    );
    lines.push(
      '',
      'Redis per event in the uniform phase, by command: calls (µs inside the command; a script counts what it issues):',
    );
    for (const mode of MODES) {
      const { calls, usec } = totals(w[mode.name].uniform);
      const events = w[mode.name].uniform.events;
      const per = Object.entries(calls)
        .sort((a, b) => usec[b[0]] - usec[a[0]])
        .map(([cmd, n]) => `${cmd} ${fixed(n / events, 2)} (${fixed(usec[cmd] / events)})`)
        .join(', ');
      lines.push(`  ${mode.name}: ${per}`);
    }
  }
  if (out.profiles) {
    for (const [mode, p] of Object.entries(out.profiles)) {
      lines.push('', `profile, ${mode} (${int(p.rate)} events/s while profiled; ${p.file}):`, p.top);
    }
  }
  return lines.join('\n');
}
