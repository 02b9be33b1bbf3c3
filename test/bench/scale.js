// `npm run bench:scale`: many connections on one machine. Starts a redis-server, N processes of
// the Redis sample (sample/02-redis, each on its own port, or with --cluster one node:cluster
// of N workers on one port), and a load generator of several processes (scale-load.js), each
// under its open-file limit and spreading its sockets over several loopback source addresses.
// Opens the connections, broadcasts one event to all of them every second, checks every
// delivery, and reports connections/s, latency percentiles, RSS per connection, CPU per
// delivery per process and Redis commands per event. See test/bench/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { nowMicros } from './markers.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const resultsDir = join(here, 'results');
const SAMPLE = join(root, 'sample', '02-redis', 'dist', 'main.js');
const CLUSTER = join(root, 'sample', '02-redis', 'cluster.js');

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const found = argv.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : found.slice(name.length + 3);
};
const CONNECTIONS = Number(option('connections', 60_000));
const SERVERS = Number(option('servers', 4));
const DURATION = Number(option('duration', 30));
const PER_LOAD = Number(option('per-load', 15_000));
const CONCURRENCY = Number(option('concurrency', 200));
const SOURCES = Array.from({ length: Number(option('sources', 8)) }, (_, i) => `127.0.0.${i + 2}`);
const USE_CLUSTER = argv.includes('--cluster');
const TOKEN = 'scale-token';
const HOST = '127.0.0.1';
const EVENT_SIZE = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User + system CPU of a process, in µs, and its resident set, in bytes, from /proc. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  return { cpuMicros: ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS, rss };
}

const started = new Set();
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/**
 * Runs `node file` with its open-file soft limit raised to the hard limit: a process cannot raise
 * its own, so a shell does it and execs Node (the pid stays the same).
 */
function spawnNode(file, env, ipc = false) {
  const stdio = ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])];
  const child = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, file], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio,
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the output once `pattern` matched `count` times; rejects on exit or timeout. */
function waitOutput(child, pattern, count, timeoutMs, collected) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${count}x ${pattern} within ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const onData = (chunk) => {
      out += chunk.toString('utf8');
      collected?.(chunk.toString('utf8'));
      if ((out.match(new RegExp(pattern.source, 'g')) ?? []).length >= count) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before ${pattern}:\n${out.slice(-2000)}`)));
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--maxclients', '1000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  await waitOutput(child, /Ready to accept connections/, 1, 10_000);
  return { port, url: `redis://${HOST}:${port}`, pid: child.pid, child };
}

/** INFO commandstats of a redis-server: calls per command. */
function commandStats(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST);
    let data = '';
    socket.on('connect', () => socket.write('INFO commandstats\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const header = /^\$(\d+)\r\n/.exec(data);
      if (header && Buffer.byteLength(data) >= header[0].length + Number(header[1]) + 2) {
        socket.destroy();
        const calls = {};
        for (const m of data.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls[m[1]] = Number(m[2]);
        resolve(calls);
      }
    });
    socket.on('error', reject);
  });
}

/** The sample's server processes: `pids` (one per worker), and the ports to connect to. */
async function startServers(redis) {
  const env = { REDIS_URL: redis.url, NEWS_INTERVAL_MS: '0', SSE_BROADCAST_TOKEN: TOKEN, SSE_REDIS_PREFIX: 'scale', NO_COLOR: '1' };
  if (USE_CLUSTER) {
    const port = await freePort();
    const primary = spawnNode(CLUSTER, { ...env, PORT: String(port), SSE_WORKERS: String(SERVERS) });
    const out = await waitOutput(primary, /\[primary\] worker \d+ \(pid \d+\) listening/, SERVERS, 120_000);
    const pids = [...out.matchAll(/\[primary\] worker \d+ \(pid (\d+)\) listening/g)].map((m) => Number(m[1]));
    return { ports: [port], pids, primaryPid: primary.pid, children: [primary] };
  }
  const ports = [];
  const children = [];
  for (let i = 0; i < SERVERS; i++) {
    const port = await freePort();
    ports.push(port);
    children.push(spawnNode(SAMPLE, { ...env, PORT: String(port) }));
  }
  await Promise.all(children.map((child) => waitOutput(child, /nest-sse sample on/, 1, 120_000)));
  return { ports, pids: children.map((c) => c.pid), children };
}

class Load {
  constructor(name) {
    this.name = name;
    this.child = spawnNode(join(here, 'scale-load.js'), {}, true);
    this.child.stderr.on('data', (chunk) => process.stderr.write(`[${name}] ${chunk}`));
    this.nextId = 1;
    this.waiting = new Map();
    this.ready = new Promise((resolve) => {
      this.child.on('message', (message) => {
        if (message.type === 'ready') resolve();
        const waiter = this.waiting.get(message.id);
        if (waiter) {
          this.waiting.delete(message.id);
          waiter(message);
        }
      });
    });
  }

  call(message) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ ...message, id });
    });
  }
}

/** POST /events/broadcast on a connection of its own; resolves with the status. */
function broadcast(port, message) {
  const body = JSON.stringify({ message, event_type: 'tick' });
  return new Promise((resolve) => {
    const req = http.request(
      { host: HOST, port, path: '/events/broadcast', method: 'POST', agent: false, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', (err) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

function percentile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

async function main() {
  if (!existsSync(SAMPLE)) throw new Error('sample/02-redis/dist is missing: run `npm run build` first (npm run bench:scale does).');
  const loadsNeeded = Math.ceil(CONNECTIONS / PER_LOAD);
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  console.log(
    `bench:scale: ${CONNECTIONS} connections, ${SERVERS} server processes${USE_CLUSTER ? ' (node:cluster, one port)' : ''}, ` +
      `${loadsNeeded} load processes, ${SOURCES.length} source addresses, one broadcast per second for ${DURATION} s; ` +
      `open-file limit ${limit} per process; ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );
  if (CONNECTIONS / (USE_CLUSTER ? SERVERS : SERVERS) > limit - 200) console.log(`warning: ${Math.ceil(CONNECTIONS / SERVERS)} connections per server process is near its open-file limit (${limit})`);
  const redis = await startRedis();
  const servers = await startServers(redis);
  const loads = Array.from({ length: loadsNeeded }, (_, i) => new Load(`load ${i + 1}`));
  await Promise.all(loads.map((l) => l.ready));
  const pids = servers.pids;
  await sleep(1000);
  const idle = pids.map(usage);

  const share = Math.ceil(CONNECTIONS / loads.length);
  const t0 = performance.now();
  const connected = await Promise.all(
    loads.map((load, i) =>
      load.call({ cmd: 'connect', ports: servers.ports, host: HOST, sources: SOURCES, path: '/events', count: Math.min(share, CONNECTIONS - i * share), offset: i * share, concurrency: CONCURRENCY }),
    ),
  );
  const connectMs = performance.now() - t0;
  const open = connected.reduce((n, c) => n + c.count, 0);
  const failed = connected.reduce((n, c) => n + c.failed, 0);
  console.log(`connected ${open} of ${CONNECTIONS} in ${(connectMs / 1000).toFixed(1)} s: ${Math.round(open / (connectMs / 1000))} connections/s${failed ? `; ${failed} failed (${connected.find((c) => c.firstError)?.firstError})` : ''}`);
  const primaryConnect = servers.primaryPid ? usage(servers.primaryPid) : undefined;
  await sleep(3000);
  const held = pids.map(usage);

  // the broadcast phase
  await Promise.all(loads.map((load) => load.call({ cmd: 'phase', start: 1 })));
  const statsBefore = await commandStats(redis.port);
  const cpuBefore = pids.map(usage);
  const redisBefore = usage(redis.pid);
  const statuses = [];
  const t1 = performance.now();
  let seq = 0;
  let late = 0;
  for (let second = 0; second < DURATION; second++) {
    const due = t1 + second * 1000;
    if (performance.now() > due + 100) late++;
    await sleep(Math.max(0, due - performance.now()));
    seq++;
    const head = `#s${seq} ${Math.round(nowMicros())}.`;
    // One after another through one node, so that Redis has them in sequence order; any node's
    // broadcast reaches every node's connections. A broadcast answered after its successor was due
    // delays that one (counted as late).
    const status = await broadcast(servers.ports[0], head + 'x'.repeat(Math.max(0, EVENT_SIZE - head.length)));
    if (status !== 200) statuses.push(status);
  }
  const ended = await Promise.all(loads.map((load) => load.call({ cmd: 'end-phase', last: seq, timeoutMs: 10_000 })));
  const cpuAfter = pids.map(usage);
  const redisAfter = usage(redis.pid);
  const statsAfter = await commandStats(redis.port);

  const events = seq;
  const owed = open * events;
  const delivered = ended.reduce((n, e) => n + e.delivered, 0);
  const lat = ended.flatMap((e) => e.latencies).sort((a, b) => a - b);
  const ms = (v) => (v === null ? '-' : (v / 1000).toFixed(1));
  const perPort = {};
  for (const e of ended) for (const [port, entry] of Object.entries(e.perPort)) {
    perPort[port] ??= { connections: 0, delivered: 0 };
    perPort[port].connections += entry.connections;
    perPort[port].delivered += entry.delivered;
  }
  const processes = pids.map((pid, i) => {
    const port = USE_CLUSTER ? undefined : servers.ports[i];
    const connections = USE_CLUSTER ? open / pids.length : perPort[port]?.connections ?? 0;
    const deliveries = USE_CLUSTER ? delivered / pids.length : perPort[port]?.delivered ?? 0;
    const cpuUs = cpuAfter[i].cpuMicros - cpuBefore[i].cpuMicros;
    return {
      pid,
      port,
      connections,
      rssPerConnKB: (held[i].rss - idle[i].rss) / connections / 1024,
      rssMB: held[i].rss / 2 ** 20,
      cpuPctOfCore: (cpuUs / ((performance.now() - t1) * 1000)) * 100,
      cpuPerDeliveryUs: cpuUs / Math.max(1, deliveries),
    };
  });
  const calls = Object.fromEntries(Object.keys(statsAfter).map((cmd) => [cmd, statsAfter[cmd] - (statsBefore[cmd] ?? 0)]).filter(([, n]) => n > 0));
  const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);
  const result = {
    config: { connections: CONNECTIONS, servers: SERVERS, cluster: USE_CLUSTER, duration: DURATION, loads: loads.length, sources: SOURCES, concurrency: CONCURRENCY, eventSize: EVENT_SIZE },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverage: os.loadavg() },
    connect: { open, failed, seconds: connectMs / 1000, perSecond: open / (connectMs / 1000), primaryCpuMs: primaryConnect ? primaryConnect.cpuMicros / 1000 : undefined },
    delivery: {
      events,
      owed,
      delivered,
      missing: ended.reduce((n, e) => n + e.missing, 0),
      gaps: ended.reduce((n, e) => n + e.gaps, 0),
      repeats: ended.reduce((n, e) => n + e.repeats, 0),
      unexpectedCloses: ended.reduce((n, e) => n + e.unexpectedCloses, 0),
      failedBroadcasts: statuses,
      lateBroadcasts: late,
      p50: percentile(lat, 0.5),
      p90: percentile(lat, 0.9),
      p99: percentile(lat, 0.99),
      max: lat.at(-1) ?? null,
    },
    processes,
    loadCpuMs: ended.map((e) => e.cpuMs),
    redis: { cpuPerEventUs: (redisAfter.cpuMicros - redisBefore.cpuMicros) / events, commandsPerEvent: totalCalls / events, calls },
  };
  const d = result.delivery;
  console.log(`${events} broadcasts to ${open} connections: ${delivered} of ${owed} deliveries; missing ${d.missing}, gaps ${d.gaps}, repeats ${d.repeats}, streams closed by a server ${d.unexpectedCloses}, failed broadcasts ${statuses.length}, sent late ${late}`);
  console.log(`latency (broadcast request sent -> event parsed by the client), ms: p50 ${ms(d.p50)}, p90 ${ms(d.p90)}, p99 ${ms(d.p99)}, max ${ms(d.max)}`);
  for (const p of processes) {
    console.log(
      `server pid ${p.pid}${p.port ? ` port ${p.port}` : ''}: ${Math.round(p.connections)} connections, RSS ${p.rssMB.toFixed(0)} MB (${p.rssPerConnKB.toFixed(1)} KB per connection), ` +
        `${p.cpuPctOfCore.toFixed(1)}% of a core while broadcasting, ${p.cpuPerDeliveryUs.toFixed(2)} µs CPU per delivery`,
    );
  }
  if (result.connect.primaryCpuMs !== undefined) console.log(`cluster primary: ${result.connect.primaryCpuMs.toFixed(0)} ms CPU after the connections were handed out`);
  console.log(`redis-server: ${result.redis.cpuPerEventUs.toFixed(0)} µs CPU and ${result.redis.commandsPerEvent.toFixed(1)} commands per broadcast (${JSON.stringify(calls)})`);
  console.log(`load generator CPU over the phase (ms): ${result.loadCpuMs.map((v) => v.toFixed(0)).join(', ')}`);
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(`results in ${file.replace(root + '/', '')}`);
  const ok = delivered === owed && d.gaps === 0 && d.repeats === 0 && d.unexpectedCloses === 0 && failed === 0 && statuses.length === 0;
  if (!ok) {
    console.log('FAILED: not every delivery arrived once and in order');
    process.exitCode = 1;
  }
  for (const load of loads) load.child.send({ cmd: 'exit' });
  for (const child of servers.children) child.kill('SIGTERM');
  await sleep(USE_CLUSTER ? 3000 : 1500);
  redis.child.kill('SIGTERM');
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
