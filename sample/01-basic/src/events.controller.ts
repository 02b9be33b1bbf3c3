import { SseEndpoint } from '@nest-sse/core';
import { BroadcastTokenGuard } from './broadcast-token.guard.js';

/** `GET /events`: every connection gets the welcome event, then whatever is broadcast. */
@SseEndpoint('/events', {
  guards: { stats: [BroadcastTokenGuard], broadcast: [BroadcastTokenGuard] },
})
export class EventsController {}
