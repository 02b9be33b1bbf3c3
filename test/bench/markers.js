// The event marker every benchmark subject puts in its event data, `#s<seq> <send time in µs>.`,
// found by an incremental scan that never splits lines or builds strings, whatever the framing
// (chunked encoding, id lines, JSON-quoted data). Shared by the load generators.
import { performance } from 'node:perf_hooks';

const HASH = 0x23; // '#'
const S = 0x73; // 's'
const SPACE = 0x20;
const DOT = 0x2e;
const HEAD_END = Buffer.from('\r\n\r\n');
const OK = Buffer.from('HTTP/1.1 200');

/** The bytes `readChunk` last read: the kept rest and the new chunk together. */
export let chunkBytes = Buffer.alloc(0);

/**
 * A new chunk of a connection's response, after what `conn.rest` kept of the previous ones. Until
 * the head is in (`conn.open`), keeps it all and returns -1; returns -2 for a status other than
 * 200 (`conn.statusLine` says which); otherwise sets `conn.open` on the head and returns where the
 * body starts in `chunkBytes`.
 */
export function readChunk(conn, chunk) {
  let buf = chunk;
  if (conn.rest !== null) {
    buf = Buffer.concat([conn.rest, chunk]);
    conn.rest = null;
  }
  chunkBytes = buf;
  if (conn.open) return 0;
  const end = buf.indexOf(HEAD_END);
  if (end === -1) {
    conn.rest = Buffer.from(buf);
    return -1;
  }
  if (buf.compare(OK, 0, OK.length, 0, OK.length) !== 0) {
    conn.statusLine = buf.subarray(0, buf.indexOf(13)).toString();
    return -2;
  }
  conn.open = true;
  return end + 4;
}

/** Microseconds since the epoch, from the monotonic clock (comparable across processes). */
export function nowMicros() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * Scans one chunk for event markers from `pos`, calling `onEvent(conn, seq, sentMicros, nowMicros)`
 * for each; keeps an unfinished marker in `conn.rest` (a copy) for the next chunk.
 */
export function scanMarkers(conn, buf, pos, onEvent) {
  const len = buf.length;
  let now = 0;
  let m;
  for (;;) {
    m = buf.indexOf(HASH, pos);
    if (m === -1) return;
    let i = m + 1;
    if (i >= len) break;
    if (buf[i] !== S) {
      pos = i;
      continue;
    }
    i++;
    let seq = 0;
    let c = 0;
    while (i < len && (c = buf[i]) >= 0x30 && c <= 0x39) {
      seq = seq * 10 + (c - 0x30);
      i++;
    }
    if (i >= len) break;
    if (c !== SPACE) {
      pos = i;
      continue;
    }
    i++;
    let t = 0;
    while (i < len && (c = buf[i]) >= 0x30 && c <= 0x39) {
      t = t * 10 + (c - 0x30);
      i++;
    }
    if (i >= len) break;
    pos = i + 1;
    if (c !== DOT) continue;
    if (now === 0) now = nowMicros();
    onEvent(conn, seq, t, now);
  }
  // a copy: the read buffer is shared by every socket and reused on the next read
  conn.rest = Buffer.from(buf.subarray(m));
}
