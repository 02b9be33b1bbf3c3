import { createServer, get as httpGet, type IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SseSink } from '../connection/sse-sink.js';
import { ChunkedSocketSink } from './chunked-socket.sink.js';

// The one place that touches Node's private HTTP server state: a stream takes its connection's
// socket from the server once the head is out, as Node's server does for an upgrade.

// Node's HTTP server state on a connection: the parser it reads requests with (`socket.parser`),
// and these listeners. A stream that owns the socket removes them, as Node does for an upgrade.
const SERVER_SOCKET_LISTENERS: Record<string, readonly string[]> = {
  data: ['bound socketOnData'],
  end: ['bound socketOnEnd'],
  close: ['bound socketOnClose'],
  drain: ['bound socketOnDrain'],
  error: ['socketOnError'],
  timeout: ['socketOnTimeout'],
  pause: ['onSocketPause'],
  resume: ['onSocketResume'],
};

interface HttpParserLike {
  incoming: unknown;
  _consumed?: boolean;
  unconsume(): void;
  remove(): void;
  close(): void;
}

/**
 * Why the stream may not take the connection's socket once the head is out, or undefined when
 * it may: a plain HTTP/1.x response of Node's server, the request the connection is on (none
 * pipelined behind it), `write`/`end` not wrapped by middleware (such a wrapper keeps every write
 * going through it), and every parser field and server listener the take relies on present as
 * this code knows them (another Node version may differ: then the response path is kept).
 */
export function socketTakeProblem(req: IncomingMessage, res: ServerResponse): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} (the take is for HTTP/1.x)`;
  if (res.headersSent) return 'the head was already sent';
  if (res.write !== ServerResponse.prototype.write || res.end !== ServerResponse.prototype.end) {
    return 'middleware wraps res.write or res.end (compression, for one)';
  }
  if (typeof res.detachSocket !== 'function') return 'the response has no detachSocket()';
  if (typeof (res as { chunkedEncoding?: unknown }).chunkedEncoding !== 'boolean')
    return 'the response has no chunkedEncoding flag';
  const socket = req.socket as (Socket & { parser?: HttpParserLike; _httpMessage?: unknown; _handle?: unknown }) | null;
  if (socket == null || res.socket !== socket || socket._httpMessage !== res)
    return 'the response is not the one its connection is writing';
  const parser = socket.parser;
  if (parser == null) return 'the connection has no HTTP parser (socket.parser)';
  if (parser.incoming !== req) return 'another request is pipelined behind this one';
  for (const method of ['unconsume', 'remove', 'close'] as const) {
    if (typeof parser[method] !== 'function') return `the HTTP parser has no ${method}()`;
  }
  if (typeof parser._consumed !== 'boolean') return 'the HTTP parser has no _consumed flag';
  for (const [event, names] of LISTENER_ENTRIES) {
    if (serverListener(socket, event, names) === undefined)
      return `Node's server has no '${event}' listener named ${names.join(' or ')} on the socket`;
  }
  return undefined;
}

const LISTENER_ENTRIES = Object.entries(SERVER_SOCKET_LISTENERS);

/**
 * The listener Node's server put on the socket for `event`, found by its name. Read from the
 * emitter's own table (`_events`: one function, or an array of them) rather than `listeners()`,
 * which copies the array for every event of every stream opened.
 */
function serverListener(socket: Socket, event: string, names: readonly string[]): (() => void) | undefined {
  const table = (socket as Socket & { _events?: Record<string, unknown> })._events;
  const entry = table?.[event] ?? socket.listeners(event);
  if (typeof entry === 'function') return isNamed(entry, names) ? (entry as () => void) : undefined;
  if (!Array.isArray(entry)) return undefined;
  for (const listener of entry) if (isNamed(listener, names)) return listener as () => void;
  return undefined;
}

/** Whether a listener (or the one a `once` wrapper calls) has one of `names`. */
function isNamed(listener: { name: string; listener?: { name: string } }, names: readonly string[]): boolean {
  return names.includes(listener.name) || (listener.listener !== undefined && names.includes(listener.listener.name));
}

/**
 * Asks a throwaway loopback server of this Node version whether streams can take their socket,
 * for the log line at start: undefined when they can, otherwise why not.
 */
export async function probeSocketTake(): Promise<string | undefined> {
  const server = createServer((req, res) => {
    const problem = socketTakeProblem(req, res);
    res.end(problem ?? '');
  });
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return await new Promise<string | undefined>((resolve, reject) => {
      const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text === '' ? undefined : text));
      });
      req.on('error', reject);
    });
  } catch (err) {
    return `the check could not run (${(err as Error).message})`;
  } finally {
    server.close();
  }
}

/**
 * Takes the connection's socket from Node's HTTP server once the head (`writeSseHead`) is sent,
 * or with the head's bytes (`sseHeadBytes`) to go out with the first write, as the server itself
 * does for an upgrade: the request, the response, the parser and the
 * framework's per-request objects can then be collected, and each write goes to the socket
 * with only the chunked framing the head announced. The connection closes when the stream
 * ends. Check `socketTakeProblem` first.
 */
export function takeSocket(req: IncomingMessage, res: ServerResponse, head?: Buffer): SseSink {
  const socket = req.socket as Socket & { parser?: HttpParserLike | null };
  const parser = socket.parser!;
  const chunked = head !== undefined || (res as { chunkedEncoding?: boolean }).chunkedEncoding === true;
  res.detachSocket(socket);
  for (const [event, names] of LISTENER_ENTRIES) {
    const listener = serverListener(socket, event, names);
    if (listener !== undefined) socket.removeListener(event, listener);
  }
  socket.parser = null;
  // This may run inside the parser's own callback: let go of it on a later turn, as Node does.
  setImmediate(releaseParser, parser as HttpParserLike & Record<string, unknown>, socket);
  socket.on('error', noop);
  socket.on('end', endOnEnd);
  // Once the stream has ended and its last bytes are out, close the connection (the parser that
  // would read a next request is gone) rather than wait for the client's half of the close.
  socket.on('finish', destroyOnFinish);
  return chunked ? new ChunkedSocketSink(socket, head) : socket;
}

// Module functions, not closures: a closure here would share its context with the parser.
function releaseParser(parser: HttpParserLike & Record<string, unknown>, socket: Socket): void {
  // as Node's own unconsume does: only while the socket still has its handle
  if (parser._consumed && (socket as Socket & { _handle?: unknown })._handle) parser.unconsume();
  parser._consumed = false;
  parser.remove();
  parser.close();
  parser.incoming = null;
  parser.socket = null;
  parser.onIncoming = null;
  socket.resume();
}

/** A client that half-closes gets the rest of the close. */
function endOnEnd(this: Socket): void {
  this.end();
}

function destroyOnFinish(this: Socket): void {
  this.destroy();
}

function noop(): void {}
