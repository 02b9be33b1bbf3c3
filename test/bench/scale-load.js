// One process of `npm run bench:scale`'s load generator, driven by scale.js over IPC. It opens
// raw SSE connections from several loopback source addresses (each address has its own
// ephemeral ports, so tens of thousands of connections to a few server ports never run out),
// reads every socket into one shared buffer, and checks each broadcast's marker per connection:
// every event once, in order, and its latency from the send time in the marker.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { serveCommands } from './ipc.js';
import { nowMicros, chunkBytes, readChunk, scanMarkers } from './markers.js';

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const LATENCY_CAP = 1 << 24;

const conns = [];
/** Per server port: its connections, and the deliveries they received in the phase. */
const perPort = new Map();
let unexpectedCloses = 0;
let phase = null;
const latencies = new Float64Array(LATENCY_CAP);

/** One event on one connection: a delivery if it is the next one owed (or later: a gap before it). */
function onMarker(conn, seq, sentAt, now) {
  const p = phase;
  if (p === null || seq < p.start) return;
  if (conn.next === 0) conn.next = p.start;
  if (seq < conn.next) {
    p.repeats++;
    return;
  }
  if (seq > conn.next) p.gaps += seq - conn.next;
  conn.next = seq + 1;
  p.delivered++;
  perPort.get(conn.port).delivered++;
  if (p.nlat < LATENCY_CAP) latencies[p.nlat++] = now - sentAt;
}

function onData(conn, chunk) {
  const wasOpen = conn.open;
  const pos = readChunk(conn, chunk);
  if (pos === -1) return;
  if (pos === -2) {
    conn.fail(new Error(`status line: ${conn.statusLine}`));
    conn.socket.destroy();
    return;
  }
  if (!wasOpen) conn.done();
  scanMarkers(conn, chunkBytes, pos, onMarker);
}

function openOne(port, host, localAddress, path, headers) {
  return new Promise((resolve, reject) => {
    const conn = { port, socket: null, open: false, rest: null, next: 0, closing: false };
    conn.done = () => {
      conn.done = conn.fail = () => {};
      resolve(conn);
    };
    conn.fail = (err) => {
      conn.done = conn.fail = () => {};
      reject(err);
    };
    const socket = net.connect({
      port,
      host,
      localAddress,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread, buf) => void onData(conn, buf.subarray(0, nread)) },
    });
    conn.socket = socket;
    socket.on('error', (err) => conn.fail(err));
    socket.on('close', () => {
      conn.fail(new Error('closed before the response head'));
      if (conn.open && !conn.closing) unexpectedCloses++;
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n${headers}\r\n`);
  });
}

async function connect({ ports, host, sources, path, count, offset, concurrency }) {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError;
  const worker = async () => {
    while (next < count) {
      const i = offset + next++;
      const port = ports[i % ports.length];
      try {
        const conn = await openOne(port, host, sources[Math.floor(i / ports.length) % sources.length], path, '');
        conns.push(conn);
        if (!perPort.has(port)) perPort.set(port, { connections: 0, delivered: 0 });
        perPort.get(port).connections++;
      } catch (err) {
        failed++;
        firstError ??= err.message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { type: 'connected', count: conns.length, failed, firstError, ms: performance.now() - started };
}

function startPhase(start) {
  for (const entry of perPort.values()) entry.delivered = 0;
  for (const conn of conns) conn.next = 0;
  phase = { start, delivered: 0, gaps: 0, repeats: 0, nlat: 0, cpu: process.cpuUsage() };
}

/** Ends the phase: `last` is the last event published; connections still owed some are waited for, bounded. */
async function endPhase({ last, timeoutMs }) {
  const p = phase;
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && conns.some((c) => c.next <= last)) await new Promise((r) => setTimeout(r, 50));
  phase = null;
  let missing = 0;
  for (const conn of conns) missing += conn.next === 0 ? last - p.start + 1 : Math.max(0, last + 1 - conn.next);
  const cpu = process.cpuUsage(p.cpu);
  return {
    type: 'phase',
    connections: conns.length,
    delivered: p.delivered,
    missing: missing - p.gaps,
    gaps: p.gaps,
    repeats: p.repeats,
    unexpectedCloses,
    // sorted here, merged by the runner: a sample of at most 20,000 per process
    latencies: sample(latencies.subarray(0, p.nlat).sort(), 20_000),
    perPort: Object.fromEntries(perPort),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

function sample(sorted, n) {
  if (sorted.length <= n) return Array.from(sorted);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = sorted[Math.floor((i * sorted.length) / n)];
  return out;
}

serveCommands(
  {
    connect,
    phase: (message) => {
      startPhase(message.start);
      return { type: 'phase-started' };
    },
    'end-phase': endPhase,
    exit: () => {
      for (const conn of conns) {
        conn.closing = true;
        conn.socket.destroy();
      }
      process.exit(0);
    },
  },
  { nowMicros: nowMicros() },
);
