import { Test } from '@nestjs/testing';
import { SseHub } from '@nest-sse/core';
import { SseTestClient } from '@nest-sse/testing';
import { EventSource } from 'eventsource';
import { AppModule } from '../src/app.module.js';

// app.close() waits about 4 s for two idle connections the eventsource package opens as its
// streams close; jest's default 5 s timeout leaves too little room for that on a busy machine.
it('sends a channel its news and no other', async () => {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register()] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0);
  const sports = await SseTestClient.connect(app, '/news?channel=sports', { EventSource, events: ['connection', 'score'] });
  const weather = await SseTestClient.connect(app, '/news?channel=weather', { EventSource, events: ['connection', 'score'] });

  await app.get(SseHub).broadcast({ event: 'score', data: '2-1', filter: { channel: 'sports' } });

  expect((await sports.waitFor('score', { timeout: 5000 })).data).toBe('2-1');
  expect((await weather.waitFor('connection')).data).toBe('channel weather');
  expect(weather.named('score')).toHaveLength(0);
  sports.close();
  weather.close();
  await app.close();
}, 30_000);
