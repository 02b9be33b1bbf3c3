import {
  CallHandler,
  CanActivate,
  ExecutionContext,
  Injectable,
  NestInterceptor,
  UnauthorizedException,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { map } from 'rxjs';
import { OnSseConnect, SseEndpoint, SseHub, SseStream } from '@nest-sse/core';

export const TOKEN = 'test-token';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

@Injectable()
export class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    if (req.headers.authorization === `Bearer ${TOKEN}`) return true;
    throw new UnauthorizedException('bad token');
  }
}

@SseEndpoint('/events', {
  heartbeatInterval: 1,
  retry: 1500,
  guards: { stats: [TokenGuard], broadcast: [TokenGuard] },
})
export class EventsController {}

@SseEndpoint('/channels', {
  heartbeatInterval: 0,
  metadata: { maxKeys: 3, maxValueLength: 20 },
  guards: { stats: [TokenGuard], broadcast: [TokenGuard] },
  maxBodySize: 1024,
})
export class ChannelsController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    const channel = stream.metadata.channel ?? 'global';
    stream.send({ event: 'connection', data: `Connected to channel: ${channel}` });
  }
}

/** No guard, no access option: stats and broadcast must stay closed. */
@SseEndpoint('/open')
export class OpenController {}

/** A class-level guard opens stats and broadcast. */
@UseGuards(TokenGuard)
@SseEndpoint('/guarded')
export class ClassGuardedController {}

@SseEndpoint('/public', { access: { stats: 'public', broadcast: 'public' }, welcome: false })
export class PublicController {}

@Injectable()
export class NewsService {
  constructor(readonly hub: SseHub) {}
  flash(): Promise<number> {
    return this.hub.broadcast({ event: 'update', data: 'Breaking news!', filter: { channel: 'news' } });
  }
}

/** Sets a header on every response and marks JSON answers: interceptors run on generated routes. */
@Injectable()
export class StampInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    context.switchToHttp().getResponse().header('x-stamp', 'yes');
    return next.handle().pipe(map((body) => (body && typeof body === 'object' ? { ...body, stamped: true } : body)));
  }
}

@UseInterceptors(StampInterceptor)
@SseEndpoint('/stamped', { access: { stats: 'public' } })
export class StampedController {}

export const CONTROLLERS = [
  EventsController,
  ChannelsController,
  OpenController,
  ClassGuardedController,
  PublicController,
  StampedController,
];
