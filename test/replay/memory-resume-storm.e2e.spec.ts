import { afterEach, describe, expect, it } from '@jest/globals';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { MemoryTransport, OnSseConnect, SseEndpoint, SseHub, SseModule, SseStream } from '@nest-sse/core';
import { ADAPTERS, eventually, startApp, type TestApp } from '../utils/app.js';
import { checkSequences, cleanReport, ResumingClient } from '../utils/resuming-client.js';

const CLIENTS = 200;

/** A connect hook that takes a turn, so live events arrive while streams are opening. */
@SseEndpoint('/events', { heartbeatInterval: 0 })
class EventsController implements OnSseConnect {
  async onSseConnect(stream: SseStream): Promise<void> {
    await nextTurn();
    stream.send({ event: 'connection', data: 'welcome' });
  }
}

/** The Redis reconnect storm's seam on one node: resuming with Last-Event-ID while publishing goes on. */
describe.each(ADAPTERS)('Resuming while the node publishes, on the memory transport over %s', (adapter) => {
  let t: TestApp | undefined;
  let pump: NodeJS.Timeout | undefined;
  const clients: ResumingClient[] = [];

  afterEach(async () => {
    clearInterval(pump);
    for (const c of clients.splice(0)) c.close();
    await t?.close();
  });

  it('gives every resuming client each event once, in order, with no gap', async () => {
    t = await startApp(adapter, {
      imports: [SseModule.forRoot({ transport: new MemoryTransport({ historySize: 100_000 }), drainTimeout: 0 })],
      controllers: [EventsController],
    });
    const hub = t.app.get(SseHub);
    let published = 0;
    // several broadcasts per turn, every few ms
    pump = setInterval(() => {
      for (let i = 0; i < 5; i++) void hub.broadcast({ data: `p:${published++}` });
    }, 5);

    for (let i = 0; i < CLIENTS; i++) clients.push(new ResumingClient());
    await Promise.all(clients.map((c) => c.connect(`${t!.url}/events`)));
    await eventually(() => clients.every((c) => c.numbers('p').length > 0), 30_000, 'every client to stream');
    // Half leave, the others read on and leave; all come back at once with their ids.
    const half = CLIENTS / 2;
    for (const c of clients.slice(0, half)) c.close();
    const left = published;
    await eventually(() => clients.slice(half).every((c) => c.numbers('p').at(-1)! > left + 20), 30_000, 'the others to read on');
    for (const c of clients.slice(half)) c.close();
    await eventually(() => published > left + 100, 30_000, 'events to be published while they are away');

    await Promise.all(clients.map((c) => c.connect(`${t!.url}/events`)));
    await eventually(() => clients.every((c) => c.sessionEvents > 100), 60_000, 'every client to stream again');
    clearInterval(pump);
    await eventually(
      () => clients.every((c) => c.numbers('p').at(-1) === published - 1),
      30_000,
      'every client to get the last event',
    );
    expect(checkSequences(clients, 'p', published - 1)).toEqual(cleanReport(CLIENTS));
  }, 120_000);
});
