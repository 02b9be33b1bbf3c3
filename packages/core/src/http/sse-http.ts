import type { IncomingMessage, ServerResponse } from 'node:http';

/** The Node request under an Express or Fastify request. */
export function rawRequest(req: any): IncomingMessage {
  return (req && req.raw) || req;
}

/**
 * Takes the Node response out of the framework's hands. On Fastify the reply is hijacked and
 * headers already set on it (CORS, for example) are copied, since they live on the reply until
 * it sends.
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

/** The `Content-Type` essence, lower case, without parameters. */
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

/** Lets go of the framework's routing state on a request whose stream is open. */
export function releaseRoutingState(req: any): void {
  if (req === null || typeof req !== 'object') return;
  for (const key of ROUTING_KEYS) if (req[key] !== undefined) req[key] = undefined;
}
