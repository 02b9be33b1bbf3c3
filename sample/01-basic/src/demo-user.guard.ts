import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { bearerToken, sameToken } from './bearer-token.js';
import { demoUsers } from './demo-users.js';

/** Signs a request in as the demo user whose token it carries (`Authorization: Bearer <token>`), as `req.user`. */
@Injectable()
export class DemoUserGuard implements CanActivate {
  private readonly users = demoUsers();

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest();
    const given = bearerToken(req);
    let user: string | undefined;
    // every token is compared, so the time taken does not say which user came close
    for (const { name, token } of this.users) if (sameToken(given, token) && user === undefined) user = name;
    if (user === undefined) throw new UnauthorizedException('Send Authorization: Bearer <token> of a demo user (SSE_DEMO_USERS).');
    req.user = { id: user };
    return true;
  }
}
