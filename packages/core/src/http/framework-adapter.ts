import type { IncomingMessage, ServerResponse } from 'node:http';

// Express hands routes Node's own request and response (extended); Fastify hands its request and
// reply, which hold Node's under `raw`. These helpers reach Node's objects under either.

/** An Express request, or a Fastify request holding Node's under `raw`. */
export type FrameworkRequest = IncomingMessage | { raw: IncomingMessage };

/** An Express response, or a Fastify reply holding Node's under `raw`. */
export type FrameworkResponse = ServerResponse | FastifyReplyLike;

interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): unknown;
  getHeaders?(): Record<string, unknown>;
  header(name: string, value: string): unknown;
}

/** The Node request under an Express or Fastify request. */
export function rawRequest(req: FrameworkRequest): IncomingMessage {
  return ('raw' in req && req.raw) || (req as IncomingMessage);
}

/** The Node response under an Express response or a Fastify reply, without taking it. */
export function rawResponse(res: FrameworkResponse): ServerResponse {
  return ('raw' in res && res.raw) || (res as ServerResponse);
}

/**
 * Takes the Node response out of the framework's hands. On Fastify the reply is hijacked and
 * headers already set on it (CORS, for example) are copied, since they live on the reply until
 * it sends.
 */
export function takeRawResponse(res: FrameworkResponse): ServerResponse {
  if ('hijack' in res && typeof res.hijack === 'function' && res.raw) {
    const headers = typeof res.getHeaders === 'function' ? res.getHeaders() : {};
    res.hijack();
    const raw = res.raw;
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && !raw.hasHeader(name)) raw.setHeader(name, value as string | string[]);
    }
    return raw;
  }
  return res as ServerResponse;
}

/** Sets a header on an Express response or a Fastify reply. */
export function setHeader(res: FrameworkResponse, name: string, value: string): void {
  if ('header' in res && typeof res.header === 'function') res.header(name, value);
  else rawResponse(res).setHeader(name, value);
}

// Express keeps its router's `next` closure (with the layer state it captures) and parsed URLs on
// the request; nothing reads them once a stream owns the response, yet they would live as long as
// the stream. Setting them to undefined (not deleting, which would make the object slower and
// larger) saves about 1 KB of heap per open stream.
const ROUTING_KEYS = ['next', 'route', '_parsedUrl', '_parsedOriginalUrl'];

/** Lets go of the framework's routing state on a request whose stream is open. */
export function releaseRoutingState(req: unknown): void {
  if (req === null || typeof req !== 'object') return;
  const fields = req as Record<string, unknown>;
  for (const key of ROUTING_KEYS) if (fields[key] !== undefined) fields[key] = undefined;
}
