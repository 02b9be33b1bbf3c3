// Subject 3: what users write today with Nest's built-in @Sse(): one shared rxjs Subject,
// each connection an Observable piped from it (filtered by the group in its query).
import 'reflect-metadata';
import { Controller, Injectable, type MessageEvent, Module, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { filter, map, type Observable, Subject } from 'rxjs';
import { type BenchSubject, fail, serve } from './harness.js';

interface BusEvent {
  data: string;
  group: string | undefined;
}

@Injectable()
class EventBus {
  readonly events = new Subject<BusEvent>();
}

@Controller()
class StreamController {
  constructor(private readonly bus: EventBus) {}

  @Sse('stream')
  stream(@Query('group') group?: string): Observable<MessageEvent> {
    return this.bus.events.pipe(
      filter((event) => event.group === undefined || event.group === group),
      map((event): MessageEvent => ({ type: 'tick', data: event.data })),
    );
  }
}

@Module({ controllers: [StreamController], providers: [EventBus] })
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const bus = app.get(EventBus);
  const subject: BenchSubject = {
    // rxjs 7 keeps the subscribers of a Subject in `observers`
    connections: () => (bus.events as unknown as { observers: unknown[] }).observers.length,
    publish: (data, group) => bus.events.next({ data, group }),
    close: () => app.close(),
  };
  serve(subject, (app.getHttpServer().address() as { port: number }).port);
}

main().catch(fail);
