// Two nodes of the app on one Redis: a stream opened on the first gets what the second broadcasts.
import 'reflect-metadata';
import { get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { SseHub, encodeSseFrame } from '@nest-sse/core';
import { RedisTransport } from '@nest-sse/redis';
import { backoffDelay } from '@nest-sse/client';
import { AppModule } from './app.module.js';

const url = process.env.REDIS_URL;
if (!url) throw new Error('set REDIS_URL');

const first = await NestFactory.create(AppModule.register(new RedisTransport({ url, prefix: 'consumer_esm' })), { logger: false });
const second = await NestFactory.create(AppModule.register(new RedisTransport({ url, prefix: 'consumer_esm' })), { logger: false });
await first.listen(0, '127.0.0.1');
await second.init();
const { port } = first.getHttpServer().address() as AddressInfo;

const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://127.0.0.1:${port}/news?channel=sports`, resolve).on('error', reject));
let text = '';
const received = new Promise<void>((resolve, reject) => {
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
    if (text.includes('event: score\n')) resolve();
    else if (text.includes('event: connection\n')) void broadcast();
  });
  res.on('end', () => reject(new Error(`the stream ended before the broadcast:\n${text}`)));
});
let sent = false;
async function broadcast(): Promise<void> {
  if (sent) return;
  sent = true;
  await second.get(SseHub).broadcast({ event: 'score', data: { home: 2, away: 1 }, filter: { channel: 'sports' } });
}
await received;
res.destroy();
const frame = /(id: [^\n]+\n)?event: score\ndata: [^\n]+\n\n/.exec(text)?.[0];
console.log(JSON.stringify({
  contentType: res.headers['content-type'],
  welcome: text.includes('data: channel sports\n'),
  frame,
  backend: (await first.get(SseHub).stats()).backend,
  encoder: encodeSseFrame({ event: 'a', data: 'x\ny' }).toString(),
  client: typeof backoffDelay,
}));
await second.close();
await first.close();
