import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

// Connections an event stream owns: requests pipelined behind the stream are never served.
const streamConnections = new WeakSet<Socket>();

/**
 * Waits for this request's turn on its connection: HTTP/1.1 answers pipelined requests in
 * order, and Node's server holds a response back (with no socket) until the ones before it are
 * done. Resolves true when the response is the one its connection is writing, false when the
 * connection closed first or is owned by an event stream (a stream never finishes, so nothing
 * behind it is served; the connection closes when the stream ends).
 */
export function awaitTurn(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean> {
  // HTTP/2 multiplexes: each stream is its own request, with its own close.
  if (req.httpVersionMajor >= 2) return true;
  const socket = req.socket;
  if (socket == null || socket.destroyed || streamConnections.has(socket)) return false;
  if (res.socket != null) return true;
  return new Promise((resolve) => {
    const settle = (turn: boolean): void => {
      res.off('socket', onSocket);
      socket.off('close', onClose);
      resolve(turn);
    };
    const onSocket = (): void => settle(!socket.destroyed && !streamConnections.has(socket));
    const onClose = (): void => settle(false);
    res.once('socket', onSocket);
    socket.once('close', onClose);
  });
}

/**
 * Marks the connection as the stream's own (see `awaitTurn`), ends it when the response ends,
 * and calls `onClose` when it closes, whichever way: the response's own 'close' does not fire
 * for every way a connection can go.
 */
export function ownConnection(req: IncomingMessage, res: ServerResponse, onClose: () => void): void {
  const socket = req.socket;
  if (socket == null || req.httpVersionMajor >= 2) return;
  streamConnections.add(socket);
  if (res.socket !== socket) return; // taken: the socket is the stream's sink already
  res.once('finish', () => socket.destroySoon());
  socket.once('close', onClose);
}

/** Writes the SSE response head and sends it at once. */
export function writeSseHead(req: IncomingMessage, res: ServerResponse): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/event-stream');
  // no-transform keeps compression middleware (and proxies) from buffering the stream
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  // nginx buffers proxied responses unless told otherwise
  res.setHeader('X-Accel-Buffering', 'no');
  if (req.httpVersionMajor < 2) res.setHeader('Connection', 'keep-alive');
  res.flushHeaders();
  const socket = req.socket;
  socket.setNoDelay(true);
  socket.setKeepAlive(true);
  socket.setTimeout(0);
}
