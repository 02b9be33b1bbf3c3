import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { bearerToken, sameToken } from './bearer-token.js';

/** Development default; set SSE_BROADCAST_TOKEN in any shared environment. */
export const DEV_BROADCAST_TOKEN = 'dev-broadcast-token';

export function broadcastToken(): string {
  return process.env.SSE_BROADCAST_TOKEN || DEV_BROADCAST_TOKEN;
}

/** Lets a request through when it carries `Authorization: Bearer <SSE_BROADCAST_TOKEN>`. */
@Injectable()
export class BroadcastTokenGuard implements CanActivate {
  private readonly expected = broadcastToken();

  canActivate(context: ExecutionContext): boolean {
    if (sameToken(bearerToken(context.switchToHttp().getRequest()), this.expected)) return true;
    throw new UnauthorizedException('Send Authorization: Bearer <SSE_BROADCAST_TOKEN>.');
  }
}
