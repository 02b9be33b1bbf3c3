import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { CallHandler, ExecutionContext, Injectable, NestInterceptor, UseInterceptors } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { Test } from '@nestjs/testing';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { OnSseConnect, SseEndpoint, SseHub, SseModule, SseStream } from '@nest-sse/core';
import { ADAPTERS, collectUntil, eventually, rawConnect, rawGet, startApp, type TestApp } from '../utils/app.js';

// Requests seen by the connect hooks, by endpoint; collected ones leave their count.
const alive = { '/direct': 0, '/through': 0 };
const requests = new FinalizationRegistry<keyof typeof alive>((path) => alive[path]--);

let responseCloses = 0;

@Injectable()
class ResponseCloseInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    const res = context.switchToHttp().getResponse();
    (res.raw ?? res).on('close', () => responseCloses++);
    return next.handle();
  }
}

/** A header set before the handler runs, as middleware or CORS would: it must reach the client. */
@Injectable()
class TagInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    const res = context.switchToHttp().getResponse();
    if (typeof res.header === 'function' && res.raw) res.header('X-Tag', 'set-before');
    else res.setHeader('X-Tag', 'set-before');
    return next.handle();
  }
}

@SseEndpoint('/direct', { heartbeatInterval: 0, welcome: false })
@UseInterceptors(TagInterceptor)
class DirectController implements OnSseConnect {
  onSseConnect(stream: SseStream, req: object): void {
    alive['/direct']++;
    requests.register(req, '/direct');
    stream.send({ event: 'hello', data: 'direct' });
  }
}

@SseEndpoint('/through', { heartbeatInterval: 0, welcome: false, directSocket: false })
@UseInterceptors(ResponseCloseInterceptor)
class ThroughController implements OnSseConnect {
  onSseConnect(stream: SseStream, req: object): void {
    alive['/through']++;
    requests.register(req, '/through');
    stream.send({ event: 'hello', data: 'through' });
  }
}

describe.each(ADAPTERS)('streams that take their socket, over %s', (adapter) => {
  let t: TestApp;
  let hub: SseHub;
  let port: number;

  beforeAll(async () => {
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [DirectController, ThroughController],
    });
    hub = t.app.get(SseHub);
    port = Number(new URL(t.url).port);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('lets the request be collected while the stream keeps delivering', async () => {
    const streams = await Promise.all(Array.from({ length: 20 }, () => rawGet(`${t.url}/direct`)));
    const through = await Promise.all(Array.from({ length: 5 }, () => rawGet(`${t.url}/through`)));
    await Promise.all([...streams, ...through].map((s) => s.until((text) => text.includes('event: hello'))));
    await collectUntil(() => alive['/direct'] === 0, 5000, 'the requests of open streams to be collected');
    // the requests of streams that write through the response stay as long as the stream
    expect(alive['/through']).toBe(5);
    await hub.broadcast({ event: 'later', data: 'still here' });
    await Promise.all([...streams, ...through].map((s) => s.until((text) => text.includes('data: still here'))));
    for (const s of [...streams, ...through]) s.destroy();
    await eventually(() => hub.localStats().connected === 0);
  });

  it('keeps the chunked keep-alive wire format and closes the connection when the stream ends', async () => {
    const conn = rawConnect(port, 'GET /direct HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await eventually(() => conn.text().includes('event: hello'));
    const [head, body] = conn.text().split('\r\n\r\n', 2);
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    expect(head.toLowerCase()).toContain('connection: keep-alive');
    expect(head.toLowerCase()).toContain('content-type: text/event-stream');
    // every chunk is `<hex size>\r\n<bytes>\r\n`
    expect(body).toMatch(/^[0-9a-f]+\r\nretry: \d+\n\n/);
    const stream = [...hub.streams('/direct')][0];
    await hub.broadcast({ event: 'tick', data: 'x'.repeat(20_000) });
    stream.close();
    await conn.closed;
    const chunks = parseChunks(conn.text().slice(conn.text().indexOf('\r\n\r\n') + 4));
    expect(chunks.last).toBe(true);
    expect(chunks.data).toContain(`event: tick\ndata: ${'x'.repeat(20_000)}\n\n`);
    expect(hub.localStats().connected).toBe(0);
  });

  it('sends the head with the headers set before it, retry and what the connect hook sent, in one write', async () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setEncoding('latin1');
    const first = new Promise<string>((resolve) => socket.once('data', resolve));
    socket.write('GET /direct HTTP/1.1\r\nHost: localhost\r\n\r\n');
    // one write on loopback arrives in one read: the first read holds all of it
    const text = await first;
    socket.destroy();
    const [head, body] = text.split('\r\n\r\n', 2);
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    // (Fastify keeps a reply's header names in lower case)
    expect(head).toMatch(/\r\nX-Tag: set-before\r\n/i);
    expect(head).toMatch(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT/);
    expect(head.match(/content-type/gi)).toHaveLength(1);
    expect(body).toMatch(/^[0-9a-f]+\r\nretry: \d+\n\nevent: hello\ndata: direct\n\n\r\n$/);
    await eventually(() => hub.localStats().connected === 0);
  });

  it('answers HTTP/1.0 without chunks, ending the body with the connection', async () => {
    const conn = rawConnect(port, 'GET /direct HTTP/1.0\r\n\r\n');
    await eventually(() => conn.text().includes('event: hello'));
    expect(conn.text().toLowerCase()).not.toContain('transfer-encoding');
    expect(conn.text()).toMatch(/\r\n\r\nretry: \d+\n\nevent: hello\ndata: direct\n\n$/);
    [...hub.streams('/direct')][0].close();
    await conn.closed;
    expect(hub.localStats().connected).toBe(0);
  });

  it('finishes the close of a client that half-closes', async () => {
    const conn = rawConnect(port, 'GET /direct HTTP/1.1\r\nHost: localhost\r\n\r\n', { allowHalfOpen: true });
    await eventually(() => conn.text().includes('event: hello'));
    conn.socket.end();
    await conn.closed;
    await eventually(() => hub.localStats().connected === 0);
  });

  it('keeps serving when clients vanish before, during and right after the take', async () => {
    const vanish = Array.from({ length: 300 }, (_, i) => {
      const conn = rawConnect(port, 'GET /direct HTTP/1.1\r\nHost: localhost\r\n\r\n');
      conn.socket.on('error', () => undefined);
      if (i % 3 === 0) conn.socket.destroy();
      else if (i % 3 === 1) setImmediate(() => conn.socket.destroy());
      else conn.socket.once('data', () => conn.socket.destroy());
      return conn.closed;
    });
    await Promise.all(vanish);
    await eventually(() => hub.localStats().connected === 0);
    const s = await rawGet(`${t.url}/direct`);
    await s.until((text) => text.includes('event: hello'));
    s.destroy();
    await eventually(() => hub.localStats().connected === 0);
  });

  it("with directSocket: false, the response's close listeners still fire", async () => {
    const before = responseCloses;
    const s = await rawGet(`${t.url}/through`);
    await s.until((text) => text.includes('event: hello'));
    s.destroy();
    await eventually(() => responseCloses === before + 1 && hub.localStats().connected === 0);
  });
});

/** Decodes a chunked body: the bytes and whether the last (zero) chunk came. */
function parseChunks(text: string): { data: string; last: boolean } {
  let data = '';
  let rest = text;
  for (;;) {
    const line = rest.indexOf('\r\n');
    if (line === -1) return { data, last: false };
    const size = parseInt(rest.slice(0, line), 16);
    if (size === 0) return { data, last: true };
    data += rest.slice(line + 2, line + 2 + size);
    expect(rest.slice(line + 2 + size, line + 4 + size)).toBe('\r\n');
    rest = rest.slice(line + 4 + size);
  }
}

describe('streams that take their socket, over TLS', () => {
  it('take the TLS socket: the request is collected, events arrive, the stream ends cleanly', async () => {
    const fixtures = new URL('../fixtures/', import.meta.url);
    const httpsOptions = {
      key: readFileSync(new URL('localhost-key.pem', fixtures)),
      cert: readFileSync(new URL('localhost-cert.pem', fixtures)),
    };
    const moduleRef = await Test.createTestingModule({
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [DirectController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false, httpsOptions });
    await app.listen(0, '127.0.0.1');
    try {
      const hub = app.get(SseHub);
      const port = (app.getHttpServer().address() as { port: number }).port;
      let text = '';
      let ended = false;
      const req = https.get({ host: '127.0.0.1', port, path: '/direct', rejectUnauthorized: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => (ended = true));
      });
      req.on('error', () => undefined);
      await eventually(() => text.includes('event: hello'));
      await collectUntil(() => alive['/direct'] === 0, 5000, 'the request of the open stream to be collected');
      await hub.broadcast({ event: 'secure', data: 'over tls' });
      await eventually(() => text.includes('event: secure\ndata: over tls\n\n'));
      [...hub.streams('/direct')][0].close();
      await eventually(() => ended && hub.localStats().connected === 0);
    } finally {
      await app.close();
    }
  });
});

describe('streams over HTTP/2', () => {
  it('share one connection through the response (Fastify, h2c), each delivered and closed on its own', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [DirectController],
    }).compile();
    const app = moduleRef.createNestApplication(new FastifyAdapter({ http2: true }) as any, { logger: false });
    await app.listen(0, '127.0.0.1');
    const session = http2.connect(`http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`);
    session.on('error', () => undefined);
    try {
      const hub = app.get(SseHub);
      const streams = Array.from({ length: 3 }, () => {
        const req = session.request({ ':path': '/direct' });
        const s = { text: '', status: 0, type: '', ended: false, req };
        req.setEncoding('utf8');
        req.on('response', (headers) => {
          s.status = Number(headers[':status']);
          s.type = String(headers['content-type']);
        });
        req.on('data', (chunk: string) => (s.text += chunk));
        req.on('end', () => (s.ended = true));
        return s;
      });
      await eventually(() => streams.every((s) => s.text.includes('event: hello')));
      expect(streams.map((s) => [s.status, s.type])).toEqual(Array(3).fill([200, 'text/event-stream']));
      await hub.broadcast({ event: 'multiplexed', data: 'over h2' });
      await eventually(() => streams.every((s) => s.text.includes('event: multiplexed\ndata: over h2\n\n')));
      streams[0].req.close();
      await eventually(() => hub.localStats().connected === 2);
      for (const stream of hub.streams('/direct')) stream.close();
      await eventually(() => streams[1].ended && streams[2].ended && hub.localStats().connected === 0);
    } finally {
      session.close();
      await app.close();
    }
  });
});
