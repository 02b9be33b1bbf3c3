import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { claimConnection } from './request-turn.js';

/**
 * Marks the connection as the stream's own (nothing pipelined behind it is served, see
 * `awaitTurn`), ends it when the response ends, and calls `onClose` when it closes, whichever
 * way: the response's own 'close' does not fire for every way a connection can go.
 */
export function ownConnection(req: IncomingMessage, res: ServerResponse, onClose: () => void): void {
  const socket = req.socket;
  if (socket == null || req.httpVersionMajor >= 2) return;
  // taken: the socket is the stream's sink already, and no request behind this one is read (the
  // take let go of the parser, with none pipelined)
  if (res.socket !== socket) return;
  claimConnection(socket);
  res.once('finish', () => socket.destroySoon());
  socket.once('close', onClose);
}

/**
 * The stream's own headers, for both ways the head goes out (`writeSseHead`, `sseHeadBytes`):
 * `no-transform` keeps compression middleware (and proxies) from buffering the stream; nginx
 * buffers proxied responses unless told `X-Accel-Buffering: no`. `Connection` is HTTP/1.x only.
 */
const SSE_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Content-Type', 'text/event-stream'],
  ['Cache-Control', 'no-cache, no-transform'],
  ['X-Accel-Buffering', 'no'],
  ['Connection', 'keep-alive'],
];
// The head's fixed lines: the same for every HTTP/1.1 stream of every endpoint.
const SSE_HEAD_LINES =
  SSE_HEADERS.map(([name, value]) => `${name}: ${value}\r\n`).join('') + 'Transfer-Encoding: chunked\r\n\r\n';
/** Headers of the response that the head's fixed lines replace (lower case). */
const REPLACED = new Set([...SSE_HEADERS.map(([name]) => name.toLowerCase()), 'transfer-encoding', 'content-length']);

let dateSecond = -1;
let dateLine = '';

/**
 * The bytes of the SSE response head for an HTTP/1.1 response whose socket the stream takes,
 * to go out with the stream's first bytes in one write: the status line, the headers set on the
 * response so far (by middleware, CORS, the framework), `Date` as Node sends it, and the fixed
 * lines of `writeSseHead`, `Transfer-Encoding: chunked` among them.
 */
export function sseHeadBytes(res: ServerResponse): Buffer {
  let head = 'HTTP/1.1 200 OK\r\n';
  // the names as they were set (Node has getRawHeaderNames since 15.13; older typings lack it)
  for (const name of (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames()) {
    if (REPLACED.has(name.toLowerCase())) continue;
    const value = res.getHeader(name);
    // setHeader checked names and values for characters a head may not hold
    if (Array.isArray(value)) for (const one of value) head += `${name}: ${one}\r\n`;
    else if (value !== undefined) head += `${name}: ${value}\r\n`;
  }
  if (res.sendDate && !res.hasHeader('date')) {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
    }
    head += dateLine;
  }
  return Buffer.from(head + SSE_HEAD_LINES, 'latin1');
}

/**
 * Writes the SSE response head and sends it at once. A client that asked to close (`Connection:
 * close`) is not told keep-alive: Node then answers `close` and closes the connection after a
 * response that ends at once (`HEAD`, a drain's retry hint).
 */
export function writeSseHead(req: IncomingMessage, res: ServerResponse): void {
  res.statusCode = 200;
  const keepAlive = req.httpVersionMajor < 2 && !ASKS_TO_CLOSE.test(req.headers.connection ?? '');
  for (const [name, value] of SSE_HEADERS) {
    if (name !== 'Connection' || keepAlive) res.setHeader(name, value);
  }
  res.flushHeaders();
}

const ASKS_TO_CLOSE = /(?:^|,)\s*close\s*(?:,|$)/i;

/**
 * A stream's connection: each event goes out at once (no Nagle delay), no idle timeout ends it.
 * TCP keep-alive (a system call per connection) only when the endpoint has no heartbeat: the
 * heartbeat already finds dead peers and keeps proxies from closing an idle stream.
 */
export function holdStreamSocket(socket: Socket, heartbeat: boolean): void {
  socket.setNoDelay(true);
  if (!heartbeat) socket.setKeepAlive(true);
  socket.setTimeout(0);
}
