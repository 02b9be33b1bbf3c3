import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';

/** Development default; set SSE_BROADCAST_TOKEN in any shared environment. */
export const DEV_BROADCAST_TOKEN = 'dev-broadcast-token';

export function broadcastToken(): string {
  return process.env.SSE_BROADCAST_TOKEN || DEV_BROADCAST_TOKEN;
}

/** Lets a request through when it carries `Authorization: Bearer <SSE_BROADCAST_TOKEN>`. */
@Injectable()
export class BroadcastTokenGuard implements CanActivate {
  private readonly expected = Buffer.from(broadcastToken());

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    const header: string = req.headers?.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length === this.expected.length && timingSafeEqual(given, this.expected)) return true;
    throw new UnauthorizedException('Send Authorization: Bearer <SSE_BROADCAST_TOKEN>.');
  }
}
