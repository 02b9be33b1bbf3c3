import { createServer, get as httpGet, type IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

/** @internal The Node request under an Express or Fastify request. */
export function rawRequest(req: any): IncomingMessage {
  return (req && req.raw) || req;
}

/**
 * Takes the Node response out of the framework's hands. On Fastify the reply is hijacked and
 * headers already set on it (CORS, for example) are copied, since they live on the reply until
 * it sends.
 * @internal
 */
export function takeRawResponse(res: any): ServerResponse {
  if (res && typeof res.hijack === 'function' && res.raw) {
    const headers = typeof res.getHeaders === 'function' ? res.getHeaders() : {};
    res.hijack();
    const raw: ServerResponse = res.raw;
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && !raw.hasHeader(name)) raw.setHeader(name, value as string | string[]);
    }
    return raw;
  }
  return res as ServerResponse;
}

/**
 * Where a stream's bytes go after the head: the response, or the connection's socket itself.
 * Both are Node writables with the same surface.
 * @internal
 */
export interface SseSink {
  write(chunk: Buffer | string): boolean;
  /** Writes several chunks as one, when the sink can do better than a concatenation. */
  writeAll?(chunks: readonly Buffer[], bytes: number): boolean;
  end(...args: any[]): unknown;
  destroy(): unknown;
  on(event: 'close' | 'error' | 'drain', listener: (...args: any[]) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'close' | 'error' | 'drain', listener: (...args: any[]) => void): unknown;
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

/** @internal The Node response under an Express response or a Fastify reply, without taking it. */
export function rawResponse(res: any): ServerResponse {
  return (res && res.raw) || res;
}

// Connections an event stream owns: requests pipelined behind the stream are never served.
const streamConnections = new WeakSet<Socket>();

/**
 * @internal Waits for this request's turn on its connection: HTTP/1.1 answers pipelined requests in
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
 * @internal Marks the connection as the stream's own (see `awaitTurn`), ends it when the response ends,
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

/** @internal Writes the SSE response head and sends it at once. */
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
 * @internal
 */
export function socketTakeProblem(req: IncomingMessage, res: ServerResponse): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} (the take is for HTTP/1.x)`;
  if (res.headersSent) return 'the head was already sent';
  if (res.write !== ServerResponse.prototype.write || res.end !== ServerResponse.prototype.end) {
    return 'middleware wraps res.write or res.end (compression, for one)';
  }
  if (typeof res.detachSocket !== 'function') return 'the response has no detachSocket()';
  if (typeof (res as { chunkedEncoding?: unknown }).chunkedEncoding !== 'boolean') return 'the response has no chunkedEncoding flag';
  const socket = req.socket as (Socket & { parser?: HttpParserLike; _httpMessage?: unknown; _handle?: unknown }) | null;
  if (socket == null || res.socket !== socket || socket._httpMessage !== res) return 'the response is not the one its connection is writing';
  const parser = socket.parser;
  if (parser == null) return "the connection has no HTTP parser (socket.parser)";
  if (parser.incoming !== req) return 'another request is pipelined behind this one';
  for (const method of ['unconsume', 'remove', 'close'] as const) {
    if (typeof parser[method] !== 'function') return `the HTTP parser has no ${method}()`;
  }
  if (typeof parser._consumed !== 'boolean') return 'the HTTP parser has no _consumed flag';
  for (const [event, names] of Object.entries(SERVER_SOCKET_LISTENERS)) {
    if (!hasListener(socket, event, names)) return `Node's server has no '${event}' listener named ${names.join(' or ')} on the socket`;
  }
  return undefined;
}

function hasListener(socket: Socket, event: string, names: readonly string[]): boolean {
  return socket.listeners(event).some((listener) => names.includes((listener as { name: string }).name));
}

/**
 * @internal Asks a throwaway loopback server of this Node version whether streams can take their socket,
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
 * as the server itself does for an upgrade: the request, the response, the parser and the
 * framework's per-request objects can then be collected, and each write goes to the socket
 * with only the chunked framing the head announced. The connection closes when the stream
 * ends. Check `socketTakeProblem` first.
 * @internal
 */
export function takeSocket(req: IncomingMessage, res: ServerResponse): SseSink {
  const socket = req.socket as Socket & { parser?: HttpParserLike | null };
  const parser = socket.parser!;
  const chunked = (res as { chunkedEncoding?: boolean }).chunkedEncoding === true;
  res.detachSocket(socket);
  for (const [event, names] of Object.entries(SERVER_SOCKET_LISTENERS)) {
    for (const listener of socket.listeners(event)) {
      if (names.includes((listener as { name: string }).name)) socket.removeListener(event, listener as () => void);
    }
  }
  socket.parser = null;
  // This may run inside the parser's own callback: let go of it on a later turn, as Node does.
  setImmediate(releaseParser, parser as HttpParserLike & Record<string, unknown>, socket);
  socket.on('error', noop);
  socket.on('end', endOnEnd);
  // Once the stream has ended and its last bytes are out, close the connection (the parser that
  // would read a next request is gone) rather than wait for the client's half of the close.
  socket.on('finish', destroyOnFinish);
  return chunked ? new ChunkedSocketSink(socket) : socket;
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const COPY_LIMIT = 16 * 1024;
let lastData: Buffer | undefined;
let lastFramed: Buffer = Buffer.alloc(0);

/** One HTTP chunk in one buffer: the size line, every frame, the CRLF (one copy). */
function chunkOf(frames: readonly Buffer[], bytes: number): Buffer {
  const size = `${bytes.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(size.length + bytes + 2);
  let at = chunk.write(size, 0, 'latin1');
  for (const frame of frames) at += frame.copy(chunk, at);
  chunk[at] = 13;
  chunk[at + 1] = 10;
  return chunk;
}

/** A taken socket under a `Transfer-Encoding: chunked` head: each write is one chunk. */
class ChunkedSocketSink implements SseSink {
  constructor(private readonly socket: Socket) {}

  write(chunk: Buffer | string): boolean {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length === 0) return this.socket.writableLength === 0;
    if (data.length > COPY_LIMIT) {
      const size = `${data.length.toString(16)}\r\n`;
      // large: three buffers in one writev rather than a copy
      this.socket.cork();
      this.socket.write(size, 'latin1');
      this.socket.write(data);
      const ok = this.socket.write(CRLF);
      this.socket.uncork();
      return ok;
    }
    // A broadcast's frame is written to stream after stream in one loop: frame it once.
    if (data !== lastData) {
      lastFramed = chunkOf([data], data.length);
      lastData = data;
    }
    return this.socket.write(lastFramed);
  }

  writeAll(chunks: readonly Buffer[], bytes: number): boolean {
    if (bytes > COPY_LIMIT) return this.write(Buffer.concat(chunks as Buffer[], bytes));
    return this.socket.write(chunkOf(chunks, bytes));
  }

  end(chunk?: Buffer | string): void {
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.socket.end(LAST_CHUNK);
  }

  destroy(): void {
    this.socket.destroy();
  }

  on(event: 'close' | 'error' | 'drain', listener: (...args: any[]) => void): this {
    this.socket.on(event, listener);
    return this;
  }

  once(event: 'drain', listener: () => void): this {
    this.socket.once(event, listener);
    return this;
  }

  off(event: 'close' | 'error' | 'drain', listener: (...args: any[]) => void): this {
    this.socket.off(event, listener);
    return this;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get writableEnded(): boolean {
    return this.socket.writableEnded;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }
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

/** @internal The `Content-Type` essence, lower case, without parameters. */
export function mediaType(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  if (!header) return undefined;
  return header.split(';', 1)[0].trim().toLowerCase();
}

// Express keeps its router's `next` closure (with the layer state it captures) and parsed URLs on
// the request; nothing reads them once a stream owns the response, yet they would live as long as
// the stream. Setting them to undefined (not deleting, which would make the object slower and
// larger) saves about 1 KB of heap per open stream.
const ROUTING_KEYS = ['next', 'route', '_parsedUrl', '_parsedOriginalUrl'];

/** @internal Lets go of the framework's routing state on a request whose stream is open. */
export function releaseRoutingState(req: any): void {
  if (req === null || typeof req !== 'object') return;
  for (const key of ROUTING_KEYS) if (req[key] !== undefined) req[key] = undefined;
}
