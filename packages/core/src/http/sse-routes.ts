import type { SseEndpointClass } from '../decorators/sse-endpoint.definition.js';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, MODULE_PATH, PATH_METADATA, VERSION_METADATA } from '@nestjs/common/constants.js';
import type { ApplicationConfig } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { RoutePathFactory } from '@nestjs/core/router/route-path-factory.js';
import { SSE_BROADCAST_HANDLER, SSE_STATS_HANDLER, SSE_STREAM_HANDLER } from '../sse.constants.js';

/** The paths Nest serves an endpoint's routes at, as it logs them (a disabled route has none). */
export interface SseRoutePaths {
  stream: string[];
  stats: string[];
  broadcast: string[];
}

const MEMBERS = { stream: SSE_STREAM_HANDLER, stats: SSE_STATS_HANDLER, broadcast: SSE_BROADCAST_HANDLER } as const;

/**
 * The full paths of an endpoint's routes, made the way Nest's router makes them (global prefix
 * and its exclusions, `RouterModule` path, controller path, URI version), with Nest's own
 * `RoutePathFactory`. Read once the app is configured (at module init), for messages and for
 * `broadcast({ endpoint })`.
 */
export function mappedPaths(config: ApplicationConfig, applicationId: string, wrapper: InstanceWrapper): SseRoutePaths {
  const target = wrapper.metatype as SseEndpointClass;
  const moduleType = wrapper.host?.metatype;
  const modulePath: string | undefined = moduleType
    ? (Reflect.getMetadata(MODULE_PATH + applicationId, moduleType) ?? Reflect.getMetadata(MODULE_PATH, moduleType))
    : undefined;
  const versioningOptions = config.getVersioning();
  const controllerVersion = versioningOptions
    ? (Reflect.getMetadata(VERSION_METADATA, target) ?? versioningOptions.defaultVersion)
    : undefined;
  const globalPrefix = leadingSlash(config.getGlobalPrefix());
  const factory = new RoutePathFactory(config);
  const paths: SseRoutePaths = { stream: [], stats: [], broadcast: [] };
  for (const key of Object.keys(MEMBERS) as Array<keyof SseRoutePaths>) {
    const fn = Object.getOwnPropertyDescriptor(target.prototype, MEMBERS[key])?.value;
    const methodPaths: string | string[] | undefined = fn && Reflect.getMetadata(PATH_METADATA, fn);
    if (methodPaths === undefined) continue;
    const method: RequestMethod = Reflect.getMetadata(METHOD_METADATA, fn);
    const methodVersion = Reflect.getMetadata(VERSION_METADATA, fn);
    for (const ctrlPath of ([] as string[]).concat(Reflect.getMetadata(PATH_METADATA, target) ?? '/')) {
      for (const methodPath of ([] as string[]).concat(methodPaths)) {
        const made = factory.create(
          {
            ctrlPath: leadingSlash(ctrlPath),
            methodPath: leadingSlash(methodPath),
            modulePath,
            globalPrefix,
            controllerVersion,
            methodVersion,
            versioningOptions,
          },
          method,
        );
        for (const path of made) if (!paths[key].includes(path)) paths[key].push(path);
      }
    }
  }
  return paths;
}

function leadingSlash(path: string | undefined): string {
  return path ? (path.startsWith('/') ? path : `/${path}`) : '';
}

/**
 * Whether a request path (lower case, no trailing slash) is a route's, as Express matches it:
 * any case, and a `:name` segment stands for any one segment (`/t/:tenant/events/broadcast`).
 */
export function routeMatches(route: string, path: string): boolean {
  const pattern = route.toLowerCase();
  if (pattern === path) return true;
  if (!pattern.includes('/:')) return false;
  const want = pattern.split('/');
  const got = path.split('/');
  return want.length === got.length && want.every((part, i) => part === got[i] || (part.startsWith(':') && got[i] !== ''));
}
