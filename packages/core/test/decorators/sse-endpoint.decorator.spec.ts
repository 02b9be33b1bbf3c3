import { describe, it, expect } from '@jest/globals';
import { Get, Post, RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { getSseEndpoint, SseConfigurationError, SseEndpoint } from '@nest-sse/core';

class SomeGuard {
  canActivate() {
    return true;
  }
}

/** Method and path of the stream, stats and broadcast handlers the decorator generates. */
function generatedRoutes(controller: abstract new (...args: never[]) => unknown): Array<[RequestMethod, string]> {
  const proto = controller.prototype as any;
  return [proto.sseStream, proto.sseStats, proto.sseBroadcast].map((fn) => [
    Reflect.getMetadata(METHOD_METADATA, fn),
    Reflect.getMetadata(PATH_METADATA, fn),
  ]);
}
const GENERATED_ROUTES = [
  [RequestMethod.GET, '/'],
  [RequestMethod.GET, 'stats'],
  [RequestMethod.POST, 'broadcast'],
];

describe('@SseEndpoint', () => {
  it('makes a controller with the three routes', () => {
    @SseEndpoint('/events/')
    class EventsController {}
    expect(Reflect.getMetadata(PATH_METADATA, EventsController)).toBe('/events');
    expect(generatedRoutes(EventsController)).toEqual(GENERATED_ROUTES);
    expect(getSseEndpoint(EventsController)).toMatchObject({ path: '/events' });
  });

  it('puts per-route guards on the generated handlers only', () => {
    @SseEndpoint('/g', { guards: { broadcast: [SomeGuard] } })
    class GuardedController {}
    const proto = GuardedController.prototype as any;
    expect(Reflect.getMetadata(GUARDS_METADATA, proto.sseBroadcast)).toEqual([SomeGuard]);
    expect(Reflect.getMetadata(GUARDS_METADATA, proto.sseStream)).toBeUndefined();
  });

  it('refuses a member with a generated name, saying how to fix it', () => {
    const decorate = () => {
      @SseEndpoint('/events')
      class Clashing {
        sseStats() {
          return 1;
        }
      }
      return Clashing;
    };
    expect(decorate).toThrow(SseConfigurationError);
    expect(decorate).toThrow(/member named 'sseStats'.*GET \/events\/stats.*Rename your member/);
  });

  it('refuses a user route on a generated path', () => {
    expect(() => {
      @SseEndpoint('/events')
      class Clashing {
        @Get('stats')
        myStats() {
          return 1;
        }
      }
      return Clashing;
    }).toThrow(/method 'myStats' is mapped to GET \/events\/stats/);
    expect(() => {
      @SseEndpoint('/events')
      class Clashing {
        @Post('broadcast')
        mine() {
          return 1;
        }
      }
      return Clashing;
    }).toThrow(/POST \/events\/broadcast/);
  });

  it('lets user routes live beside the generated ones', () => {
    @SseEndpoint('/events')
    class WithExtras {
      @Get('history')
      history() {
        return [];
      }
    }
    const proto = WithExtras.prototype as any;
    expect(Reflect.getMetadata(PATH_METADATA, proto.history)).toBe('history');
    expect(Reflect.getMetadata(METHOD_METADATA, proto.history)).toBe(RequestMethod.GET);
    expect(generatedRoutes(WithExtras)).toEqual(GENERATED_ROUTES);
  });
});
