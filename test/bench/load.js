// The load generator: its own process, driven by the runner over IPC. It opens real SSE
// connections on raw sockets and reads them with an incremental scan that costs far less than
// any server: it looks for the `#s<seq> <micros>.` marker every subject puts in its event data
// (however the subject frames or quotes it), so it never splits lines or builds strings.
// Per connection it checks that events arrive once and in order (a repeat or an event it was
// not owed is counted, not delivered); per event it counts the recipients still owed, and tells
// the runner how far every event has been fully delivered. A phase with `targets` (the routed
// scenario) owes event `start + j` to the one connection `targets[j % targets.length]` instead
// of to a group.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { send, serveCommands } from './ipc.js';
import { chunkBytes, readChunk, scanMarkers } from './markers.js';

const SPACE = 0x20;
const LATENCY_CAP = 1 << 22;
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** @type {Conn[]} */
let conns = [];
/** Kept streams the server closed (the runner fails a phase that saw any). */
let unexpectedCloses = 0;

/**
 * @typedef {object} Conn
 * @property {net.Socket} socket
 * @property {boolean} open
 * @property {boolean} closing
 * @property {Buffer | null} rest
 * @property {number} expect
 * @property {number} index its place in `conns`, which a phase's `targets` name
 * @property {number} last the last sequence number it received in a phase with `targets`
 */

/** The phase being measured: which sequence numbers every connection is owed. */
let phase = null;
const latencies = new Float64Array(LATENCY_CAP);

function startPhase({ start, count, groups, targets }) {
  // with targets every event has one recipient: one group of one, as far as the counts go
  const g = targets ? 1 : Math.max(1, groups);
  const perGroup = new Int32Array(g);
  if (targets) perGroup[0] = 1;
  else for (let i = 0; i < conns.length; i++) perGroup[i % g]++;
  const remaining = new Int32Array(count);
  for (let j = 0; j < count; j++) remaining[j] = perGroup[j % g];
  for (let i = 0; i < conns.length; i++) {
    conns[i].expect = start + (i % g);
    conns[i].last = 0;
  }
  phase = {
    start,
    count,
    groups: g,
    targets: targets ? Int32Array.from(targets) : null,
    perGroup,
    remaining,
    frontier: 0,
    delivered: 0,
    stale: 0,
    outOfOrder: 0,
    nlat: 0,
    reportArmed: false,
    cpu: process.cpuUsage(),
    elu: performance.eventLoopUtilization(),
    firstAt: 0,
    lastAt: 0,
  };
  // Events with no recipient (a group with no connection) are complete already.
  advance(phase);
}

function advance(p) {
  while (p.frontier < p.count && p.remaining[p.frontier] === 0) p.frontier++;
  if (!p.reportArmed) {
    p.reportArmed = true;
    setImmediate(() => {
      p.reportArmed = false;
      if (phase === p) send({ type: 'frontier', value: p.frontier });
    });
  }
}

/** Ends the phase; `published` events were sent. Undelivered ones count as late beyond any percentile. */
function endPhase(published) {
  const p = phase;
  phase = null;
  if (p === null) return { type: 'phase' };
  const cpu = process.cpuUsage(p.cpu);
  const elu = performance.eventLoopUtilization(p.elu);
  let owed = 0;
  for (let j = 0; j < Math.min(published, p.count); j++) owed += p.perGroup[j % p.groups];
  const lat = latencies.subarray(0, p.nlat).sort();
  const sampled = p.nlat / Math.max(1, p.delivered);
  const pick = (q) => {
    if (owed === 0) return null;
    const rank = Math.floor(q * owed);
    if (rank >= p.delivered) return -1;
    return lat[Math.min(lat.length - 1, Math.floor(rank * sampled))] / 1000;
  };
  return {
    type: 'phase',
    owed,
    delivered: p.delivered,
    missing: owed - p.delivered,
    outOfOrder: p.outOfOrder,
    unexpectedCloses,
    stale: p.stale,
    frontier: p.frontier,
    p50: pick(0.5),
    p99: pick(0.99),
    max: p.delivered < owed ? -1 : lat.length ? lat[lat.length - 1] / 1000 : null,
    cpuMs: (cpu.user + cpu.system) / 1000,
    elu: elu.utilization,
    receiveMs: (p.lastAt - p.firstAt) / 1000,
  };
}

function onEvent(conn, seq, sentAt, now) {
  const p = phase;
  if (p === null || seq < p.start) {
    if (p !== null) p.stale++;
    return;
  }
  const j = seq - p.start;
  if (p.targets !== null) {
    // another connection's event, past the phase, or not after the last one: not a delivery
    if (j >= p.count || p.targets[j % p.targets.length] !== conn.index || seq <= conn.last) {
      p.outOfOrder++;
      return;
    }
    conn.last = seq;
  } else {
    if (j >= p.count || seq < conn.expect || (seq - conn.expect) % p.groups !== 0) {
      // past the phase, a repeat, one older than an event already received, or another group's:
      // none is owed to this connection, so none is a delivery
      p.outOfOrder++;
      return;
    }
    // a later event than the next one owed: a delivery, out of order; the skipped ones stay missing
    if (seq !== conn.expect) p.outOfOrder++;
    conn.expect = seq + p.groups;
  }
  p.delivered++;
  if (p.firstAt === 0) p.firstAt = now;
  p.lastAt = now;
  if (p.nlat < LATENCY_CAP) latencies[p.nlat++] = now - sentAt;
  if (--p.remaining[j] === 0 && j === p.frontier) advance(p);
}

function onData(conn, chunk) {
  const wasOpen = conn.open;
  const pos = readChunk(conn, chunk);
  if (pos === -1) return;
  if (pos === -2) {
    conn.failed?.(new Error(`status line: ${conn.statusLine}`));
    conn.socket.destroy();
    return;
  }
  if (!wasOpen) conn.opened?.();
  scanMarkers(conn, chunkBytes, pos, onEvent);
}

/** The bearer token the guarded subject checks (test/bench/src/harness.ts); the others ignore it. */
const AUTHORIZATION = 'Authorization: Bearer bench-token\r\n';

function request(path, lastEventId) {
  const resume = lastEventId === undefined ? '' : `Last-Event-ID: ${lastEventId}\r\n`;
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n${AUTHORIZATION}${resume}\r\n`;
}

/** Opens one stream; resolves once its response head (200) arrived. */
function openOne(port, path, keep) {
  return new Promise((resolve, reject) => {
    /** @type {Conn} */
    const conn = { socket: null, open: false, closing: false, rest: null, expect: 0, index: -1, last: 0 };
    // Reads land in one buffer shared by every socket (handled before the next read), which
    // spares a Buffer and a 'data' event per read.
    const socket = net.connect({
      port,
      host: '127.0.0.1',
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread, buf) => void onData(conn, buf.subarray(0, nread)) },
    });
    conn.socket = socket;
    conn.opened = () => {
      conn.opened = conn.failed = undefined;
      resolve(conn);
    };
    conn.failed = (err) => {
      conn.opened = conn.failed = undefined;
      reject(err);
    };
    socket.on('error', (err) => conn.failed?.(err));
    socket.on('close', () => {
      conn.failed?.(new Error('closed before the response head'));
      if (keep && conn.open && !conn.closing) unexpectedCloses++;
    });
    socket.write(request(path));
  });
}

async function pool(total, concurrency, job) {
  let next = 0;
  let failed = 0;
  let firstError;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      try {
        await job(i);
      } catch (err) {
        failed++;
        firstError ??= err.message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { failed, firstError };
}

/**
 * Opens streams until `count` are held: stream i asks for `?group=g<i % groups>`, or with `key`
 * for `?<key>=<prefix><i>` (the routed scenario: one user per stream), on `ports[i % ports.length]`.
 */
async function connect({ ports, path, count, concurrency, groups, key, prefix = '' }) {
  const started = performance.now();
  const from = conns.length;
  const slots = new Array(count - from);
  const result = await pool(count - from, concurrency, async (k) => {
    const i = from + k;
    const query = key === undefined ? `group=g${i % groups}` : `${key}=${prefix}${i}`;
    const conn = await openOne(ports[i % ports.length], `${path}?${query}`, true);
    conn.index = i;
    slots[k] = conn;
  });
  // keep connection indices stable: group = index % groups, node = index % ports
  for (const conn of slots) if (conn) conns.push(conn);
  return { type: 'connected', count: conns.length, ms: performance.now() - started, ...result };
}

function closeTo(keep) {
  const closing = conns.slice(keep);
  conns = conns.slice(0, keep);
  for (const conn of closing) {
    conn.closing = true;
    conn.socket.destroy();
  }
  return { type: 'closed', count: conns.length };
}

async function churn({ ports, path, total, concurrency, groups }) {
  const started = performance.now();
  const result = await pool(total, concurrency, async (i) => {
    const conn = await openOne(ports[i % ports.length], `${path}?group=g${i % groups}`, false);
    conn.closing = true;
    conn.socket.destroy();
  });
  return { type: 'churned', total, ms: performance.now() - started, ...result };
}

// ---------------------------------------------------------------------------------------------
// reconnect storm: clients that behave like EventSource. Each parses the stream into fields,
// keeps the last event id and the `retry` it was sent, and when the stream ends or a connect
// fails it waits that long and reconnects with `Last-Event-ID`. Every event it is owed (every
// sequence number from the storm's start) must arrive once and in order.

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/** @type {StormClient[]} */
let stormClients = [];
/** The first repeated events seen, for the report. */
let repeatExamples = [];
/** The first sequence number every storm client is owed; 0 before the runner says. */
let stormStart = 0;

function epochMs() {
  return performance.timeOrigin + performance.now();
}

class StormClient {
  constructor(port, path) {
    this.port = port;
    this.path = path;
    this.socket = null;
    this.open = false;
    this.stopped = false;
    this.rest = null;
    this.lastId = undefined;
    this.pendingId = undefined;
    this.retry = 3000;
    this.event = '';
    this.seq = -1;
    this.hasData = false;
    this.next = 0;
    this.afterReset = false;
    this.resets = 0;
    this.gaps = 0;
    this.lost = 0;
    this.repeats = 0;
    this.received = 0;
    this.opens = 0;
    this.openedAt = 0;
    this.failures = 0;
    this.refused = 0;
    this.refusedStatus = 0;
    this.resumedFrom = undefined;
    this.ids = [];
    this.onOpen = undefined;
  }

  connect() {
    this.open = false;
    this.rest = null;
    const socket = net.connect({
      port: this.port,
      host: '127.0.0.1',
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread, buf) => void this.onData(buf.subarray(0, nread)) },
    });
    this.socket = socket;
    socket.on('error', (err) => {
      if (err.code === 'ECONNREFUSED') this.refused++;
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (!this.open) this.failures++;
      this.open = false;
      if (this.stopped) return;
      setTimeout(() => {
        if (!this.stopped) this.connect();
      }, this.retry);
    });
    socket.write(request(this.path, this.lastId));
  }

  onData(chunk) {
    const wasOpen = this.open;
    let pos = readChunk(this, chunk);
    if (pos === -1) return;
    if (pos === -2) {
      // EventSource gives up on a status other than 200; this client counts it and tries again
      this.refusedStatus++;
      this.socket.destroy();
      return;
    }
    const buf = chunkBytes;
    if (!wasOpen) {
      this.opens++;
      this.openedAt = epochMs();
      this.resumedFrom = this.lastId;
      this.event = '';
      this.hasData = false;
      this.seq = -1;
      this.onOpen?.();
      this.onOpen = undefined;
    }
    // Lines end in LF here (the subjects write LF; the chunk framing's CRLF leaves a CR, which is
    // trimmed). A chunk-size line is a field without a colon, which SSE ignores.
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl === -1) break;
      let end = nl;
      if (end > pos && buf[end - 1] === CR) end--;
      this.line(buf, pos, end);
      pos = nl + 1;
    }
    if (pos < buf.length) this.rest = Buffer.from(buf.subarray(pos));
  }

  line(buf, start, end) {
    if (start === end) return this.dispatch();
    const colon = buf.indexOf(COLON, start);
    if (colon === -1 || colon >= end) return;
    let value = colon + 1;
    if (value < end && buf[value] === SPACE) value++;
    const name = buf.latin1Slice(start, colon);
    if (name === 'data') {
      this.hasData = true;
      const m = buf.indexOf('#s', value);
      if (m !== -1 && m < end) {
        let seq = 0;
        for (let i = m + 2; i < end && buf[i] >= 0x30 && buf[i] <= 0x39; i++) seq = seq * 10 + (buf[i] - 0x30);
        this.seq = seq;
      }
    } else if (name === 'id') {
      this.pendingId = buf.latin1Slice(value, end);
    } else if (name === 'event') {
      this.event = buf.latin1Slice(value, end);
    } else if (name === 'retry') {
      const ms = Number(buf.latin1Slice(value, end));
      if (Number.isInteger(ms) && ms >= 0) this.retry = ms;
    }
  }

  dispatch() {
    this.lastId = this.pendingId;
    if (this.hasData) {
      if (this.event === 'sse.reset') {
        this.resets++;
        this.afterReset = true;
      } else if (this.seq >= 0) {
        this.onEvent(this.seq);
      }
    }
    this.event = '';
    this.hasData = false;
    this.seq = -1;
  }

  onEvent(seq) {
    if (stormStart === 0 || seq < stormStart) return;
    if (this.next === 0) this.next = stormStart;
    if (seq < this.next) {
      if (this.repeats++ === 0 && repeatExamples.length < 5) {
        repeatExamples.push({
          seq,
          next: this.next,
          id: this.pendingId,
          resumedFrom: this.resumedFrom,
          opens: this.opens,
          recent: this.ids.slice(-6),
        });
      }
      return;
    }
    this.ids.push(`${seq}=${this.pendingId}`);
    if (this.ids.length > 12) this.ids.shift();
    // events skipped after an sse.reset were not in the server's history; any other skip is a loss
    if (seq > this.next) {
      if (this.afterReset) this.lost += seq - this.next;
      else this.gaps += seq - this.next;
    }
    this.afterReset = false;
    this.next = seq + 1;
    this.received++;
  }
}

async function stormOpen({ ports, path, count, offset, concurrency }) {
  const started = performance.now();
  const result = await pool(count, concurrency, (k) => {
    const i = offset + k;
    const client = new StormClient(ports[i % ports.length], path);
    stormClients.push(client);
    return new Promise((resolve) => {
      client.onOpen = resolve;
      client.connect();
    });
  });
  return { type: 'storm-opened', count: stormClients.length, ms: performance.now() - started, ...result };
}

/** Streams open now, and how many opened again since `since` (epoch ms), with when. */
function stormStatus({ since }) {
  let open = 0;
  const reopened = [];
  let failures = 0;
  for (const client of stormClients) {
    if (client.open) open++;
    if (client.openedAt >= since) reopened.push(client.openedAt - since);
    failures += client.failures;
  }
  reopened.sort((a, b) => a - b);
  const at = (q) => (reopened.length ? reopened[Math.min(reopened.length - 1, Math.floor(q * reopened.length))] : null);
  let refused = 0;
  let refusedStatus = 0;
  for (const client of stormClients) {
    refused += client.refused;
    refusedStatus += client.refusedStatus;
  }
  return {
    type: 'storm-status',
    open,
    reopened: reopened.length,
    p50: at(0.5),
    p99: at(0.99),
    max: reopened.at(-1) ?? null,
    failures,
    refused,
    refusedStatus,
  };
}

/** Waits (bounded) for every client to have event `last`, then checks every sequence. */
async function stormEnd({ last, timeoutMs }) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && stormClients.some((c) => c.next <= last)) await new Promise((r) => setTimeout(r, 50));
  const out = {
    type: 'storm-ended',
    clients: stormClients.length,
    complete: 0,
    gaps: 0,
    lost: 0,
    repeats: 0,
    tailMissing: 0,
    resets: 0,
    received: 0,
    opens: 0,
  };
  for (const client of stormClients) {
    client.stopped = true;
    client.socket?.destroy();
    const tail = client.next === 0 ? last - stormStart + 1 : Math.max(0, last + 1 - client.next);
    out.gaps += client.gaps;
    out.lost += client.lost;
    out.repeats += client.repeats;
    out.tailMissing += tail;
    out.resets += client.resets;
    out.received += client.received;
    out.opens += client.opens;
    if (client.gaps === 0 && client.lost === 0 && client.repeats === 0 && tail === 0) out.complete++;
  }
  out.repeatExamples = repeatExamples;
  repeatExamples = [];
  stormClients = [];
  stormStart = 0;
  return out;
}

serveCommands({
  connect,
  phase: (message) => {
    startPhase(message);
    return { type: 'phase-started' };
  },
  'end-phase': (message) => endPhase(message.published),
  close: (message) => closeTo(message.keep),
  churn,
  'storm-open': stormOpen,
  'storm-expect': (message) => {
    stormStart = message.start;
    return { type: 'storm-expecting' };
  },
  'storm-status': stormStatus,
  'storm-end': stormEnd,
  exit: () => {
    for (const client of stormClients) client.stopped = true;
    closeTo(0);
    process.exit(0);
  },
});
