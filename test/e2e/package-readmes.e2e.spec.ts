import { describe, it, expect } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { OnSseConnect, SseEndpoint, SseHub, SseModule, SseStream } from '@nest-sse/core';
import { SseTestClient } from '@nest-sse/testing';
import { EventSource } from 'eventsource';

// The examples of packages/core/README.md and packages/testing/README.md, as written there.

@SseEndpoint('/events', { heartbeatInterval: 30 })
export class EventsController implements OnSseConnect {
  onSseConnect(stream: SseStream) {
    stream.send({ event: 'hello', data: { id: stream.id, room: stream.metadata.room ?? 'lobby' } });
  }
}

@Injectable()
export class Alerts {
  constructor(private readonly hub: SseHub) {}
  // every client of /events?room=ops, on every node
  raise(text: string) {
    return this.hub.broadcast({ event: 'alert', data: { text }, filter: { room: 'ops' } });
  }
}

@Module({ imports: [SseModule.forRoot()], controllers: [EventsController], providers: [Alerts] })
export class AppModule {}

describe('the package READMEs', () => {
  it('core: the hello event and a filtered alert from a service', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.listen(0, '127.0.0.1');
      const ops = await SseTestClient.connect(app, '/events?room=ops', { EventSource, events: ['hello', 'alert'] });
      const hello = JSON.parse((await ops.waitFor('hello')).data);
      expect(hello.room).toBe('ops');
      expect(typeof hello.id).toBe('string');
      expect(await app.get(Alerts).raise('disk full')).toBe(1);
      expect(JSON.parse((await ops.waitFor('alert')).data)).toEqual({ text: 'disk full' });
      ops.close();
    } finally {
      await app.close();
    }
  });

  it('sends the alert to the ops room only', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication();
    try {
      await app.listen(0);
      const ops = await SseTestClient.connect(app, '/events?room=ops', { EventSource, events: ['alert'] });
      const lobby = await SseTestClient.connect(app, '/events?room=lobby', { EventSource, events: ['alert'] });

      await app.get(SseHub).broadcast({ event: 'alert', data: 'disk full', filter: { room: 'ops' } });

      expect((await ops.waitFor('alert', { timeout: 2000 })).data).toBe('disk full');
      expect(lobby.named('alert')).toHaveLength(0);
      ops.close();
      lobby.close();
    } finally {
      await app.close();
    }
  });
});
