// Compiled by `npm test` (tsc -p tsconfig.json): each @ts-expect-error must be a real type error.
import { SseHub } from '@nest-sse/core';

interface AppEvents {
  update: { title: string };
  tick: number;
}

export async function typedBroadcasts(hub: SseHub<AppEvents>, untyped: SseHub): Promise<void> {
  await hub.broadcast({ event: 'update', data: { title: 'x' } });
  await hub.broadcast({ event: 'tick', data: 1, filter: { channel: 'news' } });
  await hub.broadcastEvent('tick', 2);
  // @ts-expect-error wrong payload for 'tick'
  await hub.broadcast({ event: 'tick', data: 'soon' });
  // @ts-expect-error unknown event name
  await hub.broadcast({ event: 'nope', data: 1 });
  // @ts-expect-error wrong payload for 'update'
  await hub.broadcastEvent('update', { name: 'x' });
  // an untyped hub takes anything
  await untyped.broadcast({ event: 'anything', data: { any: 'thing' } });
  await untyped.broadcastEvent('x', 1);
}
