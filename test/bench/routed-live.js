// Routed delivery, the reading side measured: what one node spends (CPU, bytes from Redis) to get
// the events of the values it holds, when those are a tenth of all events.
//   shared         every node reads the prefix's one Stream (XREAD) and drops what it holds no value for
//   routed-pubsub  the node follows its values by SSUBSCRIBE (RedisRouteFollower), history in per-value Streams
//   routed-xread   the node reads its values' Streams with one XREAD BLOCK over all of them
// Usage: npm run build && node test/bench/routed-live.js [--values=100] [--held=10] [--events=20000]
// Starts its own redis-server on a free port; the reading node runs in a child process.
import { spawn, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const dist = new URL('../../packages/redis/dist/', import.meta.url);
const load = (file) => import(new URL(file, dist).href);
const { RedisConnections } = await load('redis.connections.js');
const { RedisKeys } = await load('redis.keys.js');
const { resolveRedisOptions } = await load('redis.options.js');
const { RedisPublisher } = await load('redis.publisher.js');
const { RedisStreamReader } = await load('redis.reader.js');
const { RedisRouteFollower } = await load('redis.routes.js');
const { decodeEntry } = await load('redis-envelope.js');
const { POSITION } = await load('redis.scripts.js');

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const VALUES = arg('values', 100);
const HELD = arg('held', 10);
const EVENTS = arg('events', 20_000);
const values = Array.from({ length: VALUES }, (_, i) => `user-${i}`);
const held = values.slice(0, HELD);
const heldSet = new Set(held);
const payload = 'x'.repeat(200);

async function open(url, prefix) {
  const options = resolveRedisOptions({ url, prefix, historySize: 50_000 });
  const connections = new RedisConnections(options, () => undefined);
  await connections.open();
  return { options, connections, keys: new RedisKeys(prefix) };
}

/** Bytes this process read from Redis over its connections so far. */
function bytesRead(connections) {
  let total = 0;
  for (const client of [connections.commands, connections.reader, connections.subscriber])
    total += client?.stream?.bytesRead ?? 0;
  return total;
}

// ---- the reading node (child process) ----
if (process.argv[2] === 'reader') {
  const [, , , url, mode, prefix] = process.argv;
  const parts = await open(url, prefix);
  const expected = (EVENTS / VALUES) * HELD;
  let delivered = 0;
  let seen = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  const timeout = setTimeout(done, 60_000);
  const count = (envelope) => {
    seen++;
    if (heldSet.has(envelope.filter?.user_id?.[0]) && ++delivered === expected) done();
  };
  let ready;
  let reader;
  if (mode === 'shared') {
    reader = new RedisStreamReader(parts.connections, parts.keys.events, parts.options, count);
    reader.start(String((await POSITION.run(parts.connections.commands, [parts.keys.events], [])) || '0-0'));
    ready = Promise.resolve();
  } else if (mode === 'routed-pubsub') {
    const follower = new RedisRouteFollower(parts.connections, parts.keys, parts.options, count, () => undefined);
    for (const value of held) follower.hold(value, true);
    ready = (async () => {
      while (!held.every((v) => follower.position(v) !== undefined)) await new Promise((r) => setTimeout(r, 10));
    })();
  } else {
    const keys = held.map((v) => parts.keys.route(v).events);
    // the prefix is new: every Stream is read from its start
    const last = keys.map(() => '0-0');
    ready = Promise.resolve();
    void (async () => {
      for (;;) {
        const reply = await parts.connections.reader.call('XREAD', 'COUNT', 512, 'BLOCK', 5000, 'STREAMS', ...keys, ...last);
        if (!Array.isArray(reply)) continue;
        // [[key, entries], ...] on RESP2; [key, entries, key, entries] on RESP3 with the legacy mapping
        const streams = Array.isArray(reply[0])
          ? reply
          : Array.from({ length: reply.length / 2 }, (_, i) => [reply[2 * i], reply[2 * i + 1]]);
        for (const [key, entries] of streams) {
          const at = keys.indexOf(String(key));
          for (const [id, fields] of entries) {
            last[at] = id;
            const envelope = decodeEntry(id, fields);
            if (typeof envelope !== 'string') count(envelope);
          }
        }
      }
    })();
  }
  await ready;
  const cpu0 = process.cpuUsage();
  const bytes0 = bytesRead(parts.connections);
  process.send({ ready: true });
  await all;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpu0);
  if (reader !== undefined && reader.gaps + reader.droppedEntries > 0)
    console.error(`reader: ${reader.gaps} gaps, ${reader.droppedEntries} dropped`);
  process.send({ delivered, seen, cpuMs: (cpu.user + cpu.system) / 1000, bytes: bytesRead(parts.connections) - bytes0 });
  process.exit(0);
}

// ---- the runner ----
const port = await new Promise((resolve) => {
  const server = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'nest-sse-routed-'));
const redis = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
  { stdio: 'ignore' },
);
const url = `redis://127.0.0.1:${port}`;
const admin = new Redis(url);
admin.on('error', () => undefined);
while ((await admin.ping().catch(() => '')) !== 'PONG') await new Promise((r) => setTimeout(r, 50));
const redisCpu = async () => {
  const info = await admin.info('cpu');
  return (Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1])) * 1000;
};

const rows = [];
for (const mode of ['shared', 'routed-pubsub', 'routed-xread']) {
  const prefix = `bench_${mode.replace('-', '_')}`;
  const child = fork(new URL(import.meta.url).pathname, ['reader', url, mode, prefix, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  await next();
  const parts = await open(url, prefix);
  const lanes = new Map();
  // one publisher for the one Stream (a node has one), one per value routed
  const lane = (value) => {
    if (mode === 'shared') value = '';
    let p = lanes.get(value);
    if (p === undefined) {
      p = new RedisPublisher(
        parts.connections,
        parts.keys,
        parts.options,
        mode === 'shared' ? undefined : parts.keys.route(value),
      );
      p.start('bench');
      lanes.set(value, p);
    }
    return p;
  };
  const cpuBefore = await redisCpu();
  const result = next();
  const started = Date.now();
  let seq = 0;
  for (let i = 0; i < EVENTS; i += 500) {
    const batch = [];
    for (let j = i; j < i + 500 && j < EVENTS; j++) {
      const value = values[j % VALUES];
      batch.push(
        lane(value).publish({ data: payload, filter: { user_id: [value] }, origin: 'bench', seq: ++seq, time: Date.now() }),
      );
    }
    await Promise.all(batch);
  }
  const outcome = await result;
  const elapsed = Date.now() - started;
  const redisMs = (await redisCpu()) - cpuBefore;
  for (const p of lanes.values()) await p.close();
  parts.connections.closed = true;
  await parts.connections.close();
  rows.push({
    mode,
    'events published': EVENTS,
    'read by the node': outcome.seen,
    'for its clients': outcome.delivered,
    'node CPU ms': Math.round(outcome.cpuMs),
    'node KB from Redis': Math.round(outcome.bytes / 1024),
    'node µs per delivered event': Math.round((outcome.cpuMs * 1000) / outcome.delivered),
    'redis-server CPU ms': Math.round(redisMs),
    'wall ms': elapsed,
  });
  await new Promise((resolve) => child.once('exit', resolve));
}
console.table(rows);
admin.disconnect();
redis.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
