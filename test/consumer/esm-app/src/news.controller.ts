import { SseEndpoint, type OnSseConnect, type SseStream } from '@nest-sse/core';

/** `GET /news?channel=…`: each stream follows one channel; only the server broadcasts. */
@SseEndpoint('/news', { metadata: { allowedKeys: ['channel'] }, access: { broadcast: 'disabled' } })
export class NewsController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    stream.send({ event: 'connection', data: `channel ${stream.metadata.channel ?? 'none'}` });
  }
}
