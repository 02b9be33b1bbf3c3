// Subject: the cheapest stream a Nest route can open, written by hand: a controller method that
// takes the response (`@Res()`) and writes an SSE head as the `baseline` does, with none of
// nest-sse's work (no `retry`, no welcome event, no registry). It measures what Nest's routing and
// its HTTP adapter cost per stream opened: the floor for any stream served through a Nest route.
// BENCH_ADAPTER=fastify runs it on Nest's Fastify adapter instead of Express.
import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Module, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { type BenchSubject, fail, openPlainStream, type PlainClient, publishPlain, serve } from './harness.js';

const clients = new Set<PlainClient>();

/** The Node request and response under either adapter's own objects. */
const raw = <T>(value: T | { raw: T }): T => ((value as { raw?: T }).raw ?? value) as T;

@Controller()
class StreamController {
  @Get('stream')
  stream(
    @Req() request: IncomingMessage | { raw: IncomingMessage },
    @Res() reply: ServerResponse | { raw: ServerResponse },
  ): void {
    openPlainStream(raw(request), raw(reply), clients);
  }
}

@Module({ controllers: [StreamController] })
class AppModule {}

async function main(): Promise<void> {
  const logger: ['error', 'warn'] = ['error', 'warn'];
  const app =
    process.env.BENCH_ADAPTER === 'fastify'
      ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger })
      : await NestFactory.create(AppModule, { logger });
  await app.listen(0, '127.0.0.1');
  const subject: BenchSubject = {
    connections: () => clients.size,
    publish: (data, group) => publishPlain(clients, data, group),
    close: () => app.close(),
  };
  serve(subject, (app.getHttpServer().address() as { port: number }).port);
}

main().catch(fail);
