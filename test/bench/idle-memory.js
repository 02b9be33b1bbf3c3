// Heap and RSS per idle SSE connection, by server kind, one process per measurement:
//   npm run build && node test/bench/idle-memory.js [--n=2000]
// Kinds: node (plain node:http), express (a bare Express handler), nest-sse on Express, and
// nest-sse on Fastify. The server runs in a child with --expose-gc; the connections are raw
// sockets from this process. Loopback only; it stops by itself.
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const KINDS = ['node', 'express', 'nest-sse-express', 'nest-sse-fastify'];
const OK = 'HTTP/1.1 200';

if (process.argv[2] === '--serve') await serve(process.argv[3]);
else await main();

async function serve(kind) {
  let server;
  if (kind === 'node' || kind === 'express') {
    const http = await import('node:http');
    const handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
    };
    let app = handler;
    if (kind === 'express') {
      const { default: express } = await import('express');
      app = express();
      app.get('/s', handler);
    }
    server = http.createServer(app);
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  } else {
    await import('reflect-metadata');
    const { Module } = await import('@nestjs/common');
    const { NestFactory } = await import('@nestjs/core');
    const { SseEndpoint, SseModule } = await import('@nest-sse/core');
    class Stream {}
    SseEndpoint('/s', { heartbeatInterval: 0 })(Stream);
    class AppModule {}
    Module({ imports: [SseModule.forRoot()], controllers: [Stream] })(AppModule);
    let adapter;
    if (kind === 'nest-sse-fastify') {
      const { FastifyAdapter } = await import('@nestjs/platform-fastify');
      adapter = new FastifyAdapter();
    }
    const app = adapter
      ? await NestFactory.create(AppModule, adapter, { logger: false })
      : await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    server = app.getHttpServer();
  }
  process.send({ port: server.address().port });
  process.on('message', () => {
    global.gc();
    global.gc();
    const { heapUsed, rss } = process.memoryUsage();
    process.send({ heapUsed, rss });
  });
}

async function main() {
  const n = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 2000);
  const rows = [];
  for (const kind of KINDS) {
    const child = fork(self, ['--serve', kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const next = () => new Promise((resolve) => child.once('message', resolve));
    const { port } = await next();
    child.send('measure');
    const before = await next();
    const sockets = [];
    let opened = 0;
    for (let i = 0; i < n; i++) {
      const socket = net.connect(port, '127.0.0.1');
      let head = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        if (head.length >= OK.length) return;
        head += chunk.toString('latin1');
        if (head.length >= OK.length && head.startsWith(OK)) opened++;
      });
      socket.write('GET /s HTTP/1.1\r\nHost: localhost\r\n\r\n');
      sockets.push(socket);
      if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    if (opened < n) {
      for (const socket of sockets) socket.destroy();
      child.kill();
      throw new Error(`${kind}: ${opened} of ${n} streams opened (answered 200); raise the file limit (ulimit -n) or lower --n`);
    }
    child.send('measure');
    const after = await next();
    rows.push({ kind, heap: (after.heapUsed - before.heapUsed) / n / 1024, rss: (after.rss - before.rss) / n / 1024 });
    for (const socket of sockets) socket.destroy();
    child.kill();
  }
  const node = rows[0];
  console.log(`idle memory per connection, ${n} connections`);
  console.log('kind                 heap KB         RSS KB');
  for (const r of rows) {
    console.log(
      `${r.kind.padEnd(20)} ${r.heap.toFixed(1).padStart(5)} (${(r.heap / node.heap).toFixed(2)}x)  ${r.rss.toFixed(1).padStart(6)} (${(r.rss / node.rss).toFixed(2)}x)`,
    );
  }
}
