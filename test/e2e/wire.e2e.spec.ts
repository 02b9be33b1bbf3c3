import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import type { Socket } from 'node:net';
import { brotliCompressSync, constants as zlibConstants, deflateSync, gzipSync } from 'node:zlib';
import {
  SSE_STREAM_CLOSE_CHANNEL,
  SSE_STREAM_OPEN_CHANNEL,
  SseEndpoint,
  SseEventError,
  SseHub,
  SseModule,
  type SseStreamCloseMessage,
  type SseStreamOpenMessage,
} from '@nest-sse/core';
import { MAX_PIPELINED } from '@nest-sse/core/internal';
import { ADAPTERS, eventually, postBytes, postJson, rawConnect, rawGet, request, startApp, type TestApp } from '../utils/app.js';

const OPEN = { stats: 'public', broadcast: 'public' } as const;

@SseEndpoint('/p', { heartbeatInterval: 0, welcome: false, access: OPEN, maxBodySize: 1024 })
class DirectController {}

@SseEndpoint('/q', { heartbeatInterval: 0, welcome: false, access: OPEN, directSocket: false })
class ThroughController {}

/** What the app's own routes ran, in order. */
const ran: string[] = [];
let releaseSlow: () => void = () => undefined;

@Controller('app')
class AppRoutesController {
  @Post('orders')
  @HttpCode(200)
  order(@Body() body: { n?: number }) {
    ran.push(`order ${body?.n}`);
    return { ordered: body?.n };
  }

  @Get('slow')
  async slow() {
    ran.push('slow');
    await new Promise<void>((resolve) => (releaseSlow = resolve));
    ran.push('slow done');
    return { slow: true };
  }
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
const order = (n: number) => {
  const body = JSON.stringify({ n });
  return `POST /app/orders HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
};
const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe.each(ADAPTERS)('on the wire, over %s', (adapter) => {
  let t: TestApp;
  let hub: SseHub;
  let port: number;

  beforeAll(async () => {
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ drainTimeout: 0 })],
      controllers: [DirectController, ThroughController, AppRoutesController],
    });
    hub = t.app.get(SseHub);
    port = Number(new URL(t.url).port);
  });

  afterAll(async () => {
    await t?.close();
  });

  beforeEach(() => {
    ran.length = 0;
  });

  describe.each(['/p', '/q'])('pipelined requests behind a stream of %s', (path) => {
    it('open one stream, are never served, and leave nothing behind when the connection closes', async () => {
      const opened = hub.counters.opened;
      const conn = rawConnect(port, get(path) + get(path) + get(`${path}/stats`) + get(path));
      await eventually(() => conn.text().includes('retry:'));
      expect(hub.localStats().endpoints[path] ?? 0).toBe(1);
      const sent = await postJson(`${t.url}${path}/broadcast`, { message: 'to the one stream' });
      expect(sent.body.clients_reached).toBe(1);
      expect(sent.body.clients).toBe(1);
      await eventually(() => conn.text().includes('data: to the one stream'));
      expect((await request(`${t.url}${path}/stats`)).body.endpoint_clients).toBe(1);
      // only the stream was answered
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200']);
      conn.socket.destroy();
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0);
      expect(hub.counters.opened).toBe(opened + 1);
      expect((await postJson(`${t.url}${path}/broadcast`, { message: 'nobody' })).body.clients_reached).toBe(0);
      expect(hub.counters.opened).toBe(opened + 1);
    });

    it('close the connection when the stream ends, leaving what was queued unanswered', async () => {
      const conn = rawConnect(port, get(path) + get(path));
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 1);
      [...hub.streams(path)][0].close();
      await conn.closed;
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200']);
      expect(hub.localStats().endpoints[path] ?? 0).toBe(0);
    });

    it('are not run: a broadcast pipelined behind the stream is never published', async () => {
      const body = JSON.stringify({ message: 'pipelined' });
      const broadcast = `POST ${path}/broadcast HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const conn = rawConnect(port, get(path) + broadcast);
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 1);
      const published = hub.counters.published;
      // a later broadcast on its own connection overtakes the pipelined one, which never runs
      await postJson(`${t.url}${path}/broadcast`, { message: 'marker' });
      await eventually(() => conn.text().includes('data: marker'));
      expect(conn.text()).not.toContain('data: pipelined');
      expect(hub.counters.published).toBe(published + 1);
      conn.socket.destroy();
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0);
    });

    it('wait their turn behind a short answer: stats then a stream on one connection are both served', async () => {
      const conn = rawConnect(port, get(`${path}/stats`) + get(path));
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 1);
      await eventually(() => conn.text().includes('retry:'));
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
      expect(conn.text()).toContain('"endpoint":"' + path + '"');
      conn.socket.destroy();
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0);
    });

    it('hand nothing behind the stream to the app: its own routes, HEAD, a broadcast or a 404 never run', async () => {
      const body = JSON.stringify({ message: 'pipelined' });
      const conn = rawConnect(
        port,
        get(path) +
          order(1) +
          `HEAD ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n` +
          get('/app/slow') +
          `POST ${path}/broadcast HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
          get('/no/such/route'),
      );
      await eventually(() => conn.text().includes('retry:'));
      // a request on its own connection is answered after everything pipelined was parsed
      await postJson(`${t.url}${path}/broadcast`, { message: 'marker' });
      await eventually(() => conn.text().includes('data: marker'));
      expect(ran).toEqual([]);
      expect(conn.text()).not.toContain('data: pipelined');
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200']);
      expect(hub.localStats().endpoints[path]).toBe(1);
      conn.socket.destroy();
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0);
      expect(ran).toEqual([]);
    });

    it('see the client leave while a request body is queued behind the stream (no heartbeat)', async () => {
      const size = 1024 * 1024;
      const conn = rawConnect(port, get(path) + `GET ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${size}\r\n\r\n`);
      await eventually(() => conn.text().includes('retry:'));
      conn.socket.end(Buffer.alloc(size, 0x61));
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0, 10_000, 'the stream to close with its connection');
      await conn.closed;
    });

    it(`close the connection past ${MAX_PIPELINED} requests pipelined behind the stream`, async () => {
      const opened = hub.counters.opened;
      const conn = rawConnect(port, get(path) + get(path));
      await eventually(() => conn.text().includes('retry:'));
      conn.socket.write(get(`${path}/stats`).repeat(MAX_PIPELINED + 1));
      await conn.closed;
      await eventually(() => (hub.localStats().endpoints[path] ?? 0) === 0);
      expect(hub.counters.opened).toBe(opened + 1);
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200']);
    });
  });

  describe('pipelined requests of the app', () => {
    it('run one at a time, each when its turn comes, and are answered in order', async () => {
      const conn = rawConnect(port, get('/app/slow') + order(1) + order(2) + get('/p/stats') + get('/p'));
      await eventually(() => ran.includes('slow'));
      releaseSlow();
      await eventually(() => conn.text().includes('retry:'));
      conn.socket.destroy();
      await eventually(() => hub.localStats().connected === 0);
      expect(ran).toEqual(['slow', 'slow done', 'order 1', 'order 2']);
      expect(statusLines(conn.text())).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
      const answers = conn.text().match(/\{"(slow|ordered|connected_clients)"/g) ?? [];
      expect(answers).toEqual(['{"slow"', '{"ordered"', '{"ordered"', '{"connected_clients"']);
    });

    it(`close the connection when more than ${MAX_PIPELINED} wait behind a slow one, running none of them`, async () => {
      const conn = rawConnect(port, get('/app/slow') + order(1).repeat(MAX_PIPELINED + 1));
      await conn.closed;
      releaseSlow();
      expect(ran.filter((r) => r.startsWith('order'))).toEqual([]);
    });
  });

  it.each(['/p', '/q'])(
    'answers HEAD %s with the stream head, no body, no stream, and keeps the connection for the next request',
    async (path) => {
      const opened = hub.counters.opened;
      const conn = rawConnect(port, `HEAD ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n` + get(`${path}/stats`));
      await eventually(() => statusLines(conn.text()).length === 2 && conn.text().includes(`"endpoint":"${path}"`));
      const [head, rest] = conn.text().split('\r\n\r\n', 2);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head.toLowerCase()).toContain('content-type: text/event-stream');
      expect(head.toLowerCase()).toContain('cache-control: no-cache, no-transform');
      // the next bytes are the stats answer: the HEAD carried no body
      expect(rest).toMatch(/^HTTP\/1\.1 200/);
      expect(hub.counters.opened).toBe(opened);
      expect(hub.localStats().connected).toBe(0);
      conn.socket.destroy();
    },
  );

  it('closes the connection after a HEAD that asked to close', async () => {
    const conn = rawConnect(port, `HEAD /p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    await conn.closed;
    expect(conn.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(conn.text().toLowerCase()).toContain('connection: close\r\n');
    expect(conn.text().toLowerCase()).not.toContain('keep-alive');
  });

  it('answers a HEAD the stream route refuses with the status a GET gets, and no body', async () => {
    const conn = rawConnect(
      port,
      `HEAD /p?__proto__=1 HTTP/1.1\r\nHost: localhost\r\n\r\n` + `HEAD /p HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    );
    await eventually(() => statusLines(conn.text()).length === 2);
    const [refused, , next] = conn.text().split('\r\n\r\n');
    expect(refused).toMatch(/^HTTP\/1\.1 400 /);
    // no body between the two heads
    expect(conn.text().split('\r\n\r\n')[1]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(next).toBe('');
    expect(hub.localStats().connected).toBe(0);
    conn.socket.destroy();
  });

  describe('broadcast bodies are held to maxBodySize by the bytes read', () => {
    const big = Buffer.from(JSON.stringify({ message: 'x'.repeat(2000) }));
    const small = Buffer.from(JSON.stringify({ message: 'fits', event_type: 'small' }));

    it.each([
      ['Content-Length', big, {}],
      ['chunked', big, { 'transfer-encoding': 'chunked' }],
      ['gzip', gzipSync(big), { 'content-encoding': 'gzip' }],
      ['deflate', deflateSync(big), { 'content-encoding': 'deflate' }],
      ['br', brotliCompressSync(big), { 'content-encoding': 'br' }],
      ['gzip, chunked', gzipSync(big), { 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' }],
    ])('%s: 413 before anything is delivered', async (_name, body, headers) => {
      const s = await rawGet(`${t.url}/p`);
      await s.until((text) => text.includes('retry:'));
      const published = hub.counters.published;
      const res = await postBytes(`${t.url}/p/broadcast`, body, headers as Record<string, string>);
      expect(res.status).toBe(413);
      expect(res.body.message).toMatch(/larger than 1024 bytes.*maxBodySize/);
      expect(hub.counters.published).toBe(published);
      s.destroy();
      await eventually(() => hub.localStats().connected === 0);
    });

    it.each([
      ['gzip', (zeros: Buffer) => gzipSync(zeros, { level: 9 })],
      ['deflate', (zeros: Buffer) => deflateSync(zeros, { level: 9 })],
      ['br', (zeros: Buffer) => brotliCompressSync(zeros, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } })],
    ])('refuses a %s compression bomb without inflating it', async (coding, compress) => {
      // 32 MB of zeros in at most about 32 KB: under /q's 64 KB limit on the wire
      const zeros = 32 * 1024 * 1024;
      const bomb = compress(Buffer.alloc(zeros));
      expect(bomb.length).toBeLessThan(64 * 1024);
      let peak = 0;
      const before = process.memoryUsage().arrayBuffers;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - before)), 1);
      const res = await postBytes(`${t.url}/q/broadcast`, bomb, { 'content-encoding': coding });
      clearInterval(sampler);
      expect(res.status).toBe(413);
      expect(res.body.message).toMatch(/larger than 65536 bytes/);
      // what the server held stayed far below what the bomb inflates to
      expect(peak).toBeLessThan(zeros / 4);
    });

    it.each([
      ['Content-Length', small, {}],
      ['chunked', small, { 'transfer-encoding': 'chunked' }],
      ['gzip', gzipSync(small), { 'content-encoding': 'gzip' }],
      ['deflate', deflateSync(small), { 'content-encoding': 'deflate' }],
      ['br', brotliCompressSync(small), { 'content-encoding': 'br' }],
    ])('%s within the limit is delivered', async (_name, body, headers) => {
      const s = await rawGet(`${t.url}/p`);
      await s.until((text) => text.includes('retry:'));
      const res = await postBytes(`${t.url}/p/broadcast`, body, headers as Record<string, string>);
      expect(res.status).toBe(200);
      expect(res.body.clients_reached).toBe(1);
      await s.until((text) => text.includes('event: small\ndata: fits\n\n'));
      s.destroy();
      await eventually(() => hub.localStats().connected === 0);
    });

    it('answers 415 to an encoding it does not decode, and 400 to a corrupt one', async () => {
      const unknown = await postBytes(`${t.url}/p/broadcast`, small, { 'content-encoding': 'compress' });
      expect(unknown.status).toBe(415);
      expect(unknown.body.message).toMatch(/Content-Encoding 'compress' is not supported.*gzip, deflate or br/);
      const twice = await postBytes(`${t.url}/p/broadcast`, gzipSync(gzipSync(small)), { 'content-encoding': 'gzip, gzip' });
      expect(twice.status).toBe(415);
      const corrupt = await postBytes(`${t.url}/p/broadcast`, Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
      expect(corrupt.status).toBe(400);
      expect(corrupt.body.message).toMatch(/not valid gzip/);
    });
  });

  describe('ids', () => {
    it.each([
      '',
      ' leading',
      'trailing ',
      'with space',
      'tab\there',
      'cr\rhere',
      'lf\nhere',
      'nul\0here',
      'del\x7f',
      'bell\x07',
      'nbsp\u00a0',
      'é',
      'emoji\u{1F600}',
      'line\u2028sep',
      'half\uD800',
      'x'.repeat(129),
      {},
      ['a'],
      true,
    ])('refuses %j with a 400 that says what is wrong and which ids are allowed', async (id) => {
      const s = await rawGet(`${t.url}/p`);
      await s.until((text) => text.includes('retry:'));
      const published = hub.counters.published;
      const res = await postJson(`${t.url}/p/broadcast`, { message: 'x', id });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(
        /^id: .+; an id must be 1 to 128 printable ASCII characters \(! to ~, no spaces\), so that a client can resume from it with Last-Event-ID$/,
      );
      await expect(hub.broadcast({ data: 'x', id: id as string })).rejects.toThrow(SseEventError);
      const stream = [...hub.streams('/p')][0];
      expect(() => stream.send({ data: 'x', id: id as string })).toThrow(SseEventError);
      await expect(hub.send(stream.id, { data: 'x', id: id as string })).rejects.toThrow(SseEventError);
      expect(hub.counters.published).toBe(published);
      s.destroy();
      await eventually(() => hub.localStats().connected === 0);
      expect(s.text()).toBe('retry: 3000\n\n');
    });

    it('resumes from every id it accepts', async () => {
      const id = 'order:42/éx'.replace('é', '~');
      expect((await postJson(`${t.url}/p/broadcast`, { message: 'first', id })).status).toBe(200);
      expect((await postJson(`${t.url}/p/broadcast`, { message: 'second' })).status).toBe(200);
      const s = await rawGet(`${t.url}/p`, { 'last-event-id': id });
      await s.until((text) => text.includes('data: second'));
      expect(s.text()).not.toContain('sse.reset');
      s.destroy();
      await eventually(() => hub.localStats().connected === 0);
    });
  });

  it('publishes every stream open and close on node:diagnostics_channel', async () => {
    const opens: SseStreamOpenMessage[] = [];
    const closes: SseStreamCloseMessage[] = [];
    const onOpen = (message: unknown) => opens.push(message as SseStreamOpenMessage);
    const onClose = (message: unknown) => closes.push(message as SseStreamCloseMessage);
    subscribe(SSE_STREAM_OPEN_CHANNEL, onOpen);
    subscribe(SSE_STREAM_CLOSE_CHANNEL, onClose);
    try {
      // a HEAD opens no stream: nothing to publish
      const head = rawConnect(port, `HEAD /p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      await head.closed;
      expect(head.text()).toMatch(/^HTTP\/1\.1 200/);
      const direct = await rawGet(`${t.url}/p`);
      const through = await rawGet(`${t.url}/q`);
      await eventually(() => opens.length === 2);
      expect(opens.map((m) => [m.stream.endpoint, m.writePath]).sort()).toEqual([
        ['/p', 'socket'],
        ['/q', 'response'],
      ]);
      direct.destroy();
      [...hub.streams('/q')][0].close();
      await eventually(() => closes.length === 2);
      expect(closes.map((m) => [m.stream.endpoint, m.reason]).sort()).toEqual([
        ['/p', 'client'],
        ['/q', 'server'],
      ]);
      expect(new Set(closes.map((m) => m.stream))).toEqual(new Set(opens.map((m) => m.stream)));
      through.destroy();
    } finally {
      unsubscribe(SSE_STREAM_OPEN_CHANNEL, onOpen);
      unsubscribe(SSE_STREAM_CLOSE_CHANNEL, onClose);
    }
  });
});

describe.each(ADAPTERS)('a connection unlike the one the take expects, over %s', (adapter) => {
  it('keeps the stream on the response path, which delivers and closes with the connection', async () => {
    // Node's 'timeout' listener behind one of another name (as another Node version might have it)
    const rename = (socket: Socket): void => {
      const original = socket.listeners('timeout').find((l) => (l as { name: string }).name === 'socketOnTimeout');
      if (original === undefined) return;
      socket.removeListener('timeout', original as () => void);
      socket.on('timeout', function renamed(this: unknown) {
        return (original as () => void).call(this);
      });
    };
    const t = await startApp(
      adapter,
      { imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [DirectController] },
      (app) => {
        if (adapter === 'express')
          app.use((req: http.IncomingMessage, _res: unknown, next: () => void) => (rename(req.socket), next()));
        else
          app
            .getHttpAdapter()
            .getInstance()
            .addHook('onRequest', (request: { raw: http.IncomingMessage }, _reply: unknown, done: () => void) => {
              rename(request.raw.socket);
              done();
            });
      },
    );
    const opens: SseStreamOpenMessage[] = [];
    const onOpen = (message: unknown) => opens.push(message as SseStreamOpenMessage);
    subscribe(SSE_STREAM_OPEN_CHANNEL, onOpen);
    try {
      const hub = t.app.get(SseHub);
      const s = await rawGet(`${t.url}/p`);
      await s.until((text) => text.includes('retry:'));
      expect(opens.map((m) => m.writePath)).toEqual(['response']);
      expect((await postJson(`${t.url}/p/broadcast`, { message: 'through the response' })).body.clients_reached).toBe(1);
      await s.until((text) => text.includes('data: through the response'));
      s.destroy();
      await eventually(() => hub.localStats().connected === 0);
    } finally {
      unsubscribe(SSE_STREAM_OPEN_CHANNEL, onOpen);
      await t.close();
    }
  });
});

describe('the write path at start', () => {
  it.each(ADAPTERS)('is logged once, with the reason, over %s', async (adapter) => {
    const lines: string[] = [];
    const t = await startApp(
      adapter,
      { imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [DirectController, ThroughController] },
      (app) => {
        app.useLogger({
          log: (message: unknown) => void lines.push(String(message)),
          warn: () => undefined,
          error: () => undefined,
        } as any);
      },
    );
    try {
      const said = lines.filter((line) => line.startsWith('Streams '));
      expect(said).toEqual([
        expect.stringMatching(
          /^Streams take their connection's socket once the head is sent: Node v\d+\.\d+\.\d+'s HTTP server has every listener and field the take relies on; \/q write through the response \(directSocket: false\)\./,
        ),
      ]);
    } finally {
      await t.close();
    }
  });
});
