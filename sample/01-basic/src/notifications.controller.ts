import { OnSseConnect, SseEndpoint, SseStream } from '@nest-sse/core';
import { BroadcastTokenGuard } from './broadcast-token.guard.js';
import { DemoUserGuard } from './demo-user.guard.js';

/**
 * `GET /notifications` with `Authorization: Bearer <token>`: the signed-in user's own
 * notifications. The user id comes from the token (the guard's `req.user`), never from the query.
 */
@SseEndpoint('/notifications', {
  heartbeatInterval: 60,
  metadata: { allowedKeys: [] },
  trustedMetadata: (req) => ({ user_id: String(req.user.id) }),
  guards: { stream: [DemoUserGuard], stats: [BroadcastTokenGuard], broadcast: [BroadcastTokenGuard] },
})
export class NotificationsController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    stream.send({ event: 'connection', data: `Signed in as ${stream.metadata.user_id}` });
  }
}
