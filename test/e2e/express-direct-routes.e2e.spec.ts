import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import {
  ArgumentsHost,
  CallHandler,
  CanActivate,
  Catch,
  ExceptionFilter,
  ExecutionContext,
  ForbiddenException,
  Injectable,
  MiddlewareConsumer,
  Module,
  NestInterceptor,
  NestModule,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UnauthorizedException,
  VersioningType,
} from '@nestjs/common';
import type { Request, Response, NextFunction } from 'express';
import net from 'node:net';
import { SseEndpoint, SseHub, SseModule } from '@nest-sse/core';
import { SseExplorer } from '@nest-sse/core/internal';
import { eventually, rawGet, request, startApp, type TestApp } from '../utils/app.js';

// Express: this module's middleware hands a stream route's GET requests to what Express would run
// for them (app-wide middleware, then the route), skipping the body parsers and the matching of
// other routes. What runs for the route must not change: app middleware, guards, interceptors,
// filters, middleware bound to the route, what the request carries.

const seen: string[] = [];

@Injectable()
class PassGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    seen.push(`guard ${req.route?.path} ${JSON.stringify(req.params)} ${req.query.channel ?? ''}`);
    if (req.headers['x-deny'] !== undefined) throw new ForbiddenException('denied by the guard');
    return true;
  }
}

@Injectable()
class TraceInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    seen.push('interceptor');
    return next.handle();
  }
}

@Catch(ForbiddenException)
class TeapotFilter implements ExceptionFilter {
  catch(exception: ForbiddenException, host: ArgumentsHost): void {
    host.switchToHttp().getResponse<Response>().status(418).json({ filtered: exception.message });
  }
}

@SseEndpoint('/direct', { heartbeatInterval: 0, welcome: { event: 'hi', data: 'direct' } })
@UseGuards(PassGuard)
@UseInterceptors(TraceInterceptor)
@UseFilters(TeapotFilter)
class DirectController {}

@SseEndpoint('/bound', { heartbeatInterval: 0, welcome: { event: 'hi', data: 'bound' } })
class BoundController {}

@Module({ imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [DirectController, BoundController] })
class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply((req: Request, res: Response, next: NextFunction) => {
        seen.push(`middleware ${req.originalUrl}`);
        res.setHeader('X-Bound', 'yes');
        next();
      })
      .forRoutes('bound');
  }
}

describe('stream routes Express hands over directly', () => {
  let t: TestApp;
  let hub: SseHub;

  beforeAll(async () => {
    t = await startApp('express', { imports: [AppModule] }, (app) => {
      // middleware the app adds before it starts runs first, for every request
      app.use((req: Request, res: Response, next: NextFunction) => {
        if (req.headers['x-block'] !== undefined) return next(new UnauthorizedException('blocked by app middleware'));
        res.setHeader('X-App', 'first');
        next();
      });
    });
    hub = t.app.get(SseHub);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('are the routes with only app-wide middleware and body parsers in front; a route with middleware bound keeps the router', () => {
    expect(t.app.get(SseExplorer).directStreamRoutes()).toEqual(['/direct']);
  });

  it('still run the app middleware, guards, interceptors and the query, with what the router sets on the request', async () => {
    seen.length = 0;
    const s = await rawGet(`${t.url}/direct?channel=news`);
    expect(s.status).toBe(200);
    expect(s.headers['x-app']).toBe('first');
    await s.until((text) => text.includes('data: direct'));
    expect(seen).toEqual(['guard /direct {} news', 'interceptor']);
    expect([...hub.streams('/direct')][0].metadata).toEqual({ channel: 'news' });
    s.destroy();
    await eventually(() => hub.localStats().connected === 0);
  });

  it("answer a guard's refusal through the route's exception filter", async () => {
    const res = await request(`${t.url}/direct`, { headers: { 'x-deny': '1' } });
    expect(res.status).toBe(418);
    expect(res.body).toEqual({ filtered: 'denied by the guard' });
    expect(hub.localStats().connected).toBe(0);
  });

  it("pass an app middleware's error on to Nest's error handling", async () => {
    seen.length = 0;
    const res = await request(`${t.url}/direct`, { headers: { 'x-block': '1' } });
    expect(res.status).toBe(401);
    expect(res.body.message).toBe('blocked by app middleware');
    expect(seen).toEqual([]);
    expect(hub.localStats().connected).toBe(0);
  });

  it('leave other spellings, HEAD and a GET with a body to the router, which serves them the same', async () => {
    for (const path of ['/DIRECT', '/direct/']) {
      const s = await rawGet(`${t.url}${path}`);
      expect(s.status).toBe(200);
      await s.until((text) => text.includes('data: direct'));
      s.destroy();
    }
    const head = await fetch(`${t.url}/direct`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/event-stream');
    const socket = net.connect(Number(new URL(t.url).port), '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
    socket.write('GET /direct HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    await eventually(() => text.includes('data: direct'));
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    socket.destroy();
    await eventually(() => hub.localStats().connected === 0);
  });

  it('with middleware bound to the stream route, run it as before', async () => {
    seen.length = 0;
    const s = await rawGet(`${t.url}/bound`);
    expect(s.headers['x-bound']).toBe('yes');
    await s.until((text) => text.includes('data: bound'));
    expect(seen).toEqual(['middleware /bound']);
    s.destroy();
    await eventually(() => hub.localStats().connected === 0);
  });
});

describe('with header versioning', () => {
  it('Express routes every stream request (versions share a path and pass requests on)', async () => {
    const t = await startApp(
      'express',
      { imports: [SseModule.forRoot({ drainTimeout: 0 })], controllers: [BoundController] },
      (app) => app.enableVersioning({ type: VersioningType.HEADER, header: 'X-Version' }),
    );
    try {
      expect(t.app.get(SseExplorer).directStreamRoutes()).toEqual([]);
      const s = await rawGet(`${t.url}/bound`);
      await s.until((text) => text.includes('data: bound'));
      s.destroy();
    } finally {
      await t.close();
    }
  });
});
