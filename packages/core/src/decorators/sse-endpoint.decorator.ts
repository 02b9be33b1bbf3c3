import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Optional,
  Post,
  Req,
  RequestMethod,
  Res,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import {
  CONTROLLER_WATERMARK,
  HOST_METADATA,
  METHOD_METADATA,
  PATH_METADATA,
  VERSION_METADATA,
} from '@nestjs/common/constants.js';
import { SseConfigurationError } from '../errors/sse-configuration.error.js';
import type { FrameworkRequest, FrameworkResponse } from '../http/framework-adapter.js';
import { SseEndpointRuntimes } from '../http/sse-endpoint-runtimes.js';
import type { SseEndpointOptions } from '../interfaces/sse-endpoint-options.interface.js';
import {
  SSE_BROADCAST_HANDLER,
  SSE_ENDPOINT_METADATA,
  SSE_RUNTIMES_PROPERTY,
  SSE_STATS_HANDLER,
  SSE_STREAM_HANDLER,
} from '../sse.constants.js';
import { describeValue } from '../validation/options-schema.js';
import { validateEndpointOptions } from '../validation/sse-options.validation.js';
import { memberClash, missingModule, routeClash } from '../sse.messages.js';
import type { SseEndpointClass, SseEndpointDefinition } from './sse-endpoint.definition.js';

type RouteKey = 'stream' | 'stats' | 'broadcast';

const ROUTES: Array<{ key: RouteKey; member: string; method: RequestMethod; sub: string }> = [
  { key: 'stream', member: SSE_STREAM_HANDLER, method: RequestMethod.GET, sub: '' },
  { key: 'stats', member: SSE_STATS_HANDLER, method: RequestMethod.GET, sub: 'stats' },
  { key: 'broadcast', member: SSE_BROADCAST_HANDLER, method: RequestMethod.POST, sub: 'broadcast' },
];

/**
 * Makes the class a controller serving Server-Sent Events at `path`, with three routes:
 * `GET path` (the stream), `GET path/stats` and `POST path/broadcast`. Class-level
 * `@UseGuards` and `@UseInterceptors` apply to all three; `options.guards` adds per-route ones.
 * Stats and broadcast answer 403 until a guard protects them or `options.access` opens them.
 *
 * @example
 * @SseEndpoint('/channels', { heartbeatInterval: 60 })
 * export class ChannelsController implements OnSseConnect {
 *   onSseConnect(stream: SseStream) {
 *     stream.send({ event: 'connection', data: `Connected to channel: ${stream.metadata.channel ?? 'global'}` });
 *   }
 * }
 * @publicApi
 */
export function SseEndpoint(path: string, options: SseEndpointOptions = {}): ClassDecorator {
  return (target: SseEndpointClass) => {
    if (typeof path !== 'string') {
      throw new SseConfigurationError(
        `@SseEndpoint on ${target.name}: the path is ${describeValue(path)}; it must be a string such as '/events'.`,
        { option: 'path', value: path, rule: "a string such as '/events'" },
      );
    }
    validateEndpointOptions(`@SseEndpoint('${path}') on ${target.name}`, options);
    const normalized = normalizePath(path);
    const definition: SseEndpointDefinition = { path: normalized, options, target };
    const proto = target.prototype;
    assertNoClash(target, normalized);

    Reflect.defineMetadata(SSE_ENDPOINT_METADATA, definition, target);
    if (Reflect.getMetadata(CONTROLLER_WATERMARK, target) === undefined) {
      // Controller() writes every controller key; keep a @Version or @Host applied below this one
      const version = Reflect.getMetadata(VERSION_METADATA, target);
      const host = Reflect.getMetadata(HOST_METADATA, target);
      Controller(normalized)(target);
      if (version !== undefined) Reflect.defineMetadata(VERSION_METADATA, version, target);
      if (host !== undefined) Reflect.defineMetadata(HOST_METADATA, host, target);
    }
    // Optional, so that an app without SseModule fails with our message (below), not with Nest's
    // "can't resolve dependencies" naming this internal property.
    Inject(SseEndpointRuntimes)(proto, SSE_RUNTIMES_PROPERTY);
    Optional()(proto, SSE_RUNTIMES_PROPERTY);
    checkHubOnInit(target);

    const handlers: Record<RouteKey, (this: object, ...args: never[]) => unknown> = {
      stream(req: FrameworkRequest, res: FrameworkResponse) {
        return runtimesOf(this, target).for(definition).stream(this, req, res);
      },
      stats(req: FrameworkRequest, res: FrameworkResponse) {
        return runtimesOf(this, target).for(definition).stats(req, res);
      },
      broadcast(req: FrameworkRequest, body: unknown, res: FrameworkResponse) {
        return runtimesOf(this, target).for(definition).broadcast(req, body, res);
      },
    };

    for (const route of ROUTES) {
      // a route disabled here is not a route at all: Nest neither maps nor logs it, and answers 404
      if (route.key !== 'stream' && options.access?.[route.key] === 'disabled') continue;
      const fn = handlers[route.key];
      Object.defineProperty(fn, 'name', { value: route.member });
      Object.defineProperty(proto, route.member, { value: fn, writable: true, configurable: true, enumerable: false });
      const descriptor = Object.getOwnPropertyDescriptor(proto, route.member)!;
      (route.method === RequestMethod.GET ? Get : Post)(route.sub)(proto, route.member, descriptor);
      Req()(proto, route.member, 0);
      if (route.key === 'stream') Res()(proto, route.member, 1);
      // stats and broadcast answer through Nest (passthrough): the response is for headers and turn
      if (route.key === 'stats') Res({ passthrough: true })(proto, route.member, 1);
      if (route.key === 'broadcast') {
        Body()(proto, route.member, 1);
        Res({ passthrough: true })(proto, route.member, 2);
        HttpCode(200)(proto, route.member, descriptor);
      }
      const params = route.key === 'broadcast' ? 3 : 2;
      Reflect.defineMetadata(
        'design:paramtypes',
        Array.from({ length: params }, () => Object),
        proto,
        route.member,
      );
      const guards = options.guards?.[route.key];
      if (guards?.length) UseGuards(...guards)(proto, route.member, descriptor);
      const interceptors = options.interceptors?.[route.key];
      if (interceptors?.length) UseInterceptors(...interceptors)(proto, route.member, descriptor);
    }
    placeRoutes(definition);
  };
}

/**
 * Where the generated routes go: under the class's controller path. When the class has its own
 * `@Controller(path)` (applied before or after this decorator), the endpoint's path goes on each
 * route instead, so `@Controller('admin') @SseEndpoint('events')` serves `/admin/events`,
 * `/admin/events/stats` and `/admin/events/broadcast`, and the class's own routes stay under
 * `/admin` as Nest puts them. Called again at start-up, when a `@Controller` applied after this
 * decorator may have replaced the path; the result depends only on the class's decorators.
 */
export function placeRoutes(definition: SseEndpointDefinition): void {
  const proto = definition.target.prototype;
  const controllerPath: unknown = Reflect.getMetadata(PATH_METADATA, definition.target);
  const own = controllerPath !== definition.path;
  for (const route of ROUTES) {
    const fn = Object.getOwnPropertyDescriptor(proto, route.member)?.value;
    if (typeof fn !== 'function') continue;
    const base = own && definition.path !== '/' ? definition.path.slice(1) : '';
    Reflect.defineMetadata(PATH_METADATA, [base, route.sub].filter(Boolean).join('/') || '/', fn);
  }
}

/** Runs before the class's own `onModuleInit` (if any): the app fails to start without the module. */
function checkHubOnInit(target: SseEndpointClass): void {
  const proto = target.prototype;
  const own = proto.onModuleInit as ((...args: unknown[]) => unknown) | undefined;
  Object.defineProperty(proto, 'onModuleInit', {
    value: function onModuleInit(this: object, ...args: unknown[]) {
      runtimesOf(this, target);
      return own?.apply(this, args);
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

function runtimesOf(instance: object, target: SseEndpointClass): SseEndpointRuntimes {
  const runtimes = (instance as Record<string, SseEndpointRuntimes | undefined>)[SSE_RUNTIMES_PROPERTY];
  if (!runtimes) throw new SseConfigurationError(missingModule(target.name));
  return runtimes;
}

function normalizePath(path: string): string {
  const trimmed = path.trim().replace(/^\/+|\/+$/g, '');
  return '/' + trimmed;
}

function assertNoClash(target: SseEndpointClass, path: string): void {
  const proto = target.prototype;
  for (const route of ROUTES) {
    if (route.member in proto) {
      throw new SseConfigurationError(memberClash(target.name, route.member, describeRoute(route.method, path, route.sub)));
    }
  }
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor') continue;
    const value = Object.getOwnPropertyDescriptor(proto, name)?.value;
    if (typeof value !== 'function') continue;
    const method: RequestMethod | undefined = Reflect.getMetadata(METHOD_METADATA, value);
    if (method === undefined) continue;
    const paths: string[] = ([] as string[]).concat(Reflect.getMetadata(PATH_METADATA, value) ?? '/');
    for (const route of ROUTES) {
      const sameMethod = method === route.method || method === RequestMethod.ALL;
      if (sameMethod && paths.some((p) => p.replace(/^\/+|\/+$/g, '') === route.sub)) {
        throw new SseConfigurationError(routeClash(target.name, name, describeRoute(route.method, path, route.sub)));
      }
    }
  }
}

function describeRoute(method: RequestMethod, path: string, sub: string): string {
  const full = sub ? `${path === '/' ? '' : path}/${sub}` : path;
  return `${RequestMethod[method]} ${full}`;
}
