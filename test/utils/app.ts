import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { EventSource } from 'eventsource';
import { SseTestClient, type SseTestClientOptions } from '@nest-sse/testing';
import http from 'node:http';
import net from 'node:net';

export type AdapterName = 'express' | 'fastify';
export const ADAPTERS: AdapterName[] = ['express', 'fastify'];

export interface TestApp {
  app: INestApplication;
  url: string;
  close(): Promise<void>;
}

/** A real Nest app on a free loopback port, on the chosen HTTP adapter. */
export async function startApp(
  adapter: AdapterName,
  metadata: ModuleMetadata,
  configure?: (app: INestApplication) => void | Promise<void>,
): Promise<TestApp> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter() as any, { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  await configure?.(app);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url, close: () => app.close() };
}

/**
 * A raw connection to 127.0.0.1:`port` that writes `requests` as given (several pipelined, or
 * malformed on purpose) and keeps the bytes exactly as the server answers.
 */
export function rawConnect(port: number, requests: string, options: { allowHalfOpen?: boolean } = {}) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(requests);
  return { socket, text: () => text, closed };
}

/** A real EventSource on the app, collecting the named events. */
export function connect(
  url: string,
  path: string,
  options: Omit<SseTestClientOptions, 'EventSource'> = {},
): Promise<SseTestClient> {
  return SseTestClient.connect(url, path, { EventSource: EventSource as any, ...options });
}

export interface RawStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received so far. */
  text(): string;
  /** Resolves once the received text satisfies `test`. */
  until(test: (text: string) => boolean, timeout?: number): Promise<string>;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  destroy(): void;
}

/**
 * `connect`, then waits for the endpoint's `connection` welcome event; the client is added to
 * `clients` (when given) for the test to close.
 */
export async function connectWelcomed(
  url: string,
  path: string,
  options: Omit<SseTestClientOptions, 'EventSource'> = {},
  clients?: SseTestClient[],
): Promise<SseTestClient> {
  const client = await connect(url, path, options);
  clients?.push(client);
  await client.waitFor('connection');
  return client;
}

/** A raw `http.get` of a stream, to see bytes the EventSource API hides (comments, retry). */
export function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let buffer = '';
      const listeners = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (const listener of listeners) listener();
      });
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => buffer,
        until(test, timeout = 10_000) {
          if (test(buffer)) return Promise.resolve(buffer);
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => {
              listeners.delete(check);
              fail(new Error(`Timed out after ${timeout} ms; received: ${JSON.stringify(buffer.slice(-500))}`));
            }, timeout);
            const check = (): void => {
              if (test(buffer)) {
                clearTimeout(timer);
                listeners.delete(check);
                ok(buffer);
              }
            };
            listeners.add(check);
          });
        },
        ended,
        destroy: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

/** JSON request helper (status, parsed body). */
export async function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/**
 * A JSON POST of exactly the bytes given, with the headers given, over a connection of its own;
 * with `transfer-encoding: chunked`, written in several chunks so that the size is known only by
 * reading.
 */
export function postBytes(
  url: string,
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }),
        );
      },
    );
    req.on('error', reject);
    if (headers['transfer-encoding'] === 'chunked') {
      for (let at = 0; at < body.length; at += 300) req.write(body.subarray(at, at + 300));
      req.end();
    } else req.end(body);
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or the timeout passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeout = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
}

/** A full garbage collection; fails when the process runs without --expose-gc (test/run-tests.js passes it). */
export function collectGarbage(): void {
  if (global.gc === undefined)
    throw new Error('global.gc is missing: run the tests with node --expose-gc (test/run-tests.js does)');
  global.gc();
}

/** Collects garbage until `check` returns true (a FinalizationRegistry callback has run) or the timeout passes. */
export async function collectUntil(check: () => boolean, timeout = 10_000, what = 'objects to be collected'): Promise<void> {
  await eventually(
    async () => {
      collectGarbage();
      await sleep(20);
      return check();
    },
    timeout,
    what,
  );
}
