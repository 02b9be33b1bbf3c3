import { OnSseConnect, SseEndpoint, SseStream } from '@nest-sse/core';
import { BroadcastTokenGuard } from './broadcast-token.guard.js';

/** `GET /channels?channel=news`: events filtered by channel. */
@SseEndpoint('/channels', {
  heartbeatInterval: 60,
  metadata: { allowedKeys: ['channel'] },
  guards: { stats: [BroadcastTokenGuard], broadcast: [BroadcastTokenGuard] },
})
export class ChannelsController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    if (stream.metadata.channel === undefined) stream.setMetadata('channel', 'global');
    stream.send({ event: 'connection', data: `Connected to channel: ${stream.metadata.channel}` });
  }
}
