import { BadRequestException, HttpException, PayloadTooLargeException, UnsupportedMediaTypeException } from '@nestjs/common';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { isJsonMediaType, mediaType } from './content-type.js';

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** The body's Content-Encoding, or undefined for none; throws 415 for any other than gzip, deflate or br. */
function decoderOf(headers: IncomingHttpHeaders): (() => Transform) | undefined {
  const header = headers['content-encoding'];
  if (header === undefined) return undefined;
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return undefined;
  const decoder = codings.length === 1 ? DECODERS[codings[0]] : undefined;
  if (decoder === undefined) {
    throw new UnsupportedMediaTypeException(
      `Content-Encoding '${header}' is not supported; send the body plain, or with one of gzip, deflate or br.`,
    );
  }
  return decoder;
}

function tooLarge(limit: number): HttpException {
  return new PayloadTooLargeException(
    `The broadcast body is larger than ${limit} bytes, the most this endpoint takes (maxBodySize), on the wire or decoded.`,
  );
}

/**
 * Reads a request body, decoding gzip, deflate or br as it streams, and stops as soon as more
 * than `limit` bytes arrived or came out of the decoder: a compression bomb is never inflated
 * past `limit + 1` bytes. Resolves with the decoded body and the bytes read off the wire; rejects
 * with an `HttpException` (413, 415, or 400 for a corrupt encoding).
 */
export function readBody(
  req: Readable,
  headers: IncomingHttpHeaders,
  limit: number,
): Promise<{ body: Buffer; received: number }> {
  let decoder: Transform | undefined;
  try {
    const declared = Number(headers['content-length']);
    if (declared > limit) throw tooLarge(limit);
    const make = decoderOf(headers);
    decoder = make?.();
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let ended = false;
    let done = false;
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (decoder !== undefined) {
        decoder.off('data', onDecoded);
        decoder.destroy();
      }
      if (err === undefined) resolve({ body: Buffer.concat(chunks, decoded), received });
      else {
        // stop reading what is left: the answer closes the connection
        req.pause();
        reject(err);
      }
    };
    const take = (chunk: Buffer): void => {
      decoded += chunk.length;
      if (decoded > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onDecoded = (chunk: Buffer): void => take(chunk);
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) return finish(tooLarge(limit));
      if (decoder === undefined) take(chunk);
      // The decoder's output is counted as it comes: writing stops being useful once it is over.
      else decoder.write(chunk);
    };
    const onEnd = (): void => {
      ended = true;
      if (decoder === undefined) finish(undefined);
      else decoder.end();
    };
    const onError = (err: Error): void => finish(err);
    const onClose = (): void => {
      if (!ended) finish(new BadRequestException('The request ended before its body was complete.'));
    };
    if (decoder !== undefined) {
      decoder.on('data', onDecoded);
      decoder.once('end', () => finish(undefined));
      decoder.once('error', (err) =>
        finish(new BadRequestException(`The body is not valid ${headers['content-encoding']}: ${err.message}`)),
      );
    }
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

// Requests whose body `readBody` read in full and within its limit.
const readRequests = new WeakSet<IncomingMessage>();

/** Whether this module's reader read the request's body (see `expressBodyReader`, `fastifyBodyReader`). */
export function bodyWasRead(req: IncomingMessage): boolean {
  return readRequests.has(req);
}

/** Where a broadcast body is read: the endpoint's limit for a request path, if it is a broadcast route. */
export type BroadcastLimit = (method: string | undefined, path: string) => number | undefined;

/** Whether the body is one this module reads (the broadcast route takes JSON only; others get 415 there). */
function isJson(req: IncomingMessage): boolean {
  return isJsonMediaType(mediaType(req));
}

/** Answers as Nest answers an `HttpException` (these come before any route code runs). */
function answer(res: ServerResponse, err: HttpException): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.getResponse());
  // What is left of the body is not read: the connection cannot carry another request.
  res.writeHead(err.getStatus(), {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}

/**
 * Express: a middleware, put before the app's body parsers, that reads a broadcast's body with
 * `readBody` and parses it; the parsers then find the request finished and leave it alone.
 */
export function expressBodyReader(limitFor: BroadcastLimit) {
  return function sseBroadcastBody(req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: () => void): void {
    const limit = limitFor(req.method, pathOf(req.url));
    if (limit === undefined || !isJson(req)) return next();
    readBody(req, req.headers, limit).then(
      ({ body }) => {
        try {
          req.body = JSON.parse(body.toString('utf8'));
          readRequests.add(req);
        } catch (err) {
          return answer(res, new BadRequestException(`The broadcast body is not valid JSON: ${(err as Error).message}`));
        }
        next();
      },
      (err) => (err instanceof HttpException ? answer(res, err) : res.destroy()),
    );
  };
}

/**
 * Fastify: a `preParsing` hook that hands Fastify's JSON parser the decoded, size-checked body
 * of a broadcast (`receivedEncodedLength` keeps Fastify's Content-Length check on the wire bytes).
 */
export function fastifyBodyReader(limitFor: BroadcastLimit) {
  return async function sseBroadcastBody(
    request: { raw: IncomingMessage; method: string; routeOptions?: { url?: string } },
    reply: { header(name: string, value: string): unknown },
    payload: Readable,
  ): Promise<Readable> {
    const limit = limitFor(request.method, request.routeOptions?.url ?? pathOf(request.raw.url));
    if (limit === undefined || !isJson(request.raw)) return payload;
    try {
      const { body, received } = await readBody(payload, request.raw.headers, limit);
      const decoded = Readable.from([body]) as Readable & { receivedEncodedLength?: number };
      decoded.receivedEncodedLength = received;
      readRequests.add(request.raw);
      // Fastify parses `application/json` only and answers 415 to any other type; a `+json` type
      // (`application/vnd.api+json`), which the route takes as Express does, is handed to its
      // JSON parser under that name, for this request of a broadcast route alone.
      if (request.raw.headers['content-type'] !== 'application/json') request.raw.headers['content-type'] = 'application/json';
      return decoded;
    } catch (err) {
      reply.header('Connection', 'close');
      throw err;
    }
  };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
