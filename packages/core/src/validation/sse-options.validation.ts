import { SseConfigurationError } from '../errors/sse-configuration.error.js';
import { metadataKeyProblem } from '../connection/metadata-key.js';
import { assertSseField } from '../encoding/sse-encoder.js';
import type { SseEndpointOptions } from '../interfaces/sse-endpoint-options.interface.js';
import type { SseModuleOptions } from '../interfaces/sse-module-options.interface.js';
import type { SseTransport } from '../interfaces/sse-transport.interface.js';
import { MAX_TIMER_MS, type OptionRule, SseOptionRules as R, optionError, validateOptions } from './options-schema.js';

/** Every value `access.stats` and `access.broadcast` take. */
export const SSE_ROUTE_ACCESS = ['guarded', 'global-guards', 'public', 'disabled'] as const;

const eventName = R.string('an event name of 1 to 256 characters without CR, LF or NUL', (v) => problemOf(() => assertSseField('event', v)));
// the rule already says what a name may hold; a reserved name is the one case worth a hint
const metadataKey = R.string("a metadata name: 1 to 64 letters, digits, '_', '.', ':' or '-'", (v) => {
  const problem = metadataKeyProblem(v);
  return problem === undefined ? undefined : problem.endsWith('reserved') ? `${problem}.` : '';
});
const guard = R.custom('a guard class or instance (with canActivate)', (v) => typeof v === 'function' || hasMethod(v, 'canActivate'));
const interceptor = R.custom('an interceptor class or instance (with intercept)', (v) => typeof v === 'function' || hasMethod(v, 'intercept'));
const perRoute = (item: OptionRule) => R.object({ stream: R.arrayOf(item), stats: R.arrayOf(item), broadcast: R.arrayOf(item) }, [], 'route');
const count = R.integer({ min: 1 });

/** The shape of `@SseEndpoint` options, also `defaults` of the module. */
const endpointShape: Record<keyof SseEndpointOptions, OptionRule> = {
  heartbeatInterval: R.integer({ min: 1, max: 86_400, unit: 'seconds', also: [0, 'no heartbeats'] }),
  retry: R.integer({ min: 0, max: MAX_TIMER_MS, unit: 'ms' }),
  welcome: R.either(
    R.oneOf([false]),
    R.object({ event: eventName, data: R.custom('any value but undefined', (v) => v !== undefined) }, ['data']),
  ),
  metadata: R.object({
    allowedKeys: R.arrayOf(metadataKey),
    maxKeys: count,
    maxValuesPerKey: count,
    maxValueLength: R.integer({ min: 1, unit: 'characters' }),
  }),
  trustedMetadata: R.function(),
  authorize: R.function(),
  guards: perRoute(guard),
  interceptors: perRoute(interceptor),
  access: R.object({ stats: R.oneOf(SSE_ROUTE_ACCESS), broadcast: R.oneOf(SSE_ROUTE_ACCESS) }, [], 'route'),
  allowedEvents: R.arrayOf(eventName, 1),
  maxBodySize: R.integer({ min: 1, unit: 'bytes' }),
  maxConnections: count,
  maxConnectionsPerKey: R.object({ key: metadataKey, max: count }, ['key', 'max']),
  maxBufferSize: R.integer({ min: 1, unit: 'bytes' }),
  slowClientPolicy: R.oneOf(['disconnect', 'drop-oldest']),
  directSocket: R.boolean(),
};

const endpointRule = R.object(endpointShape);

/**
 * `defaults.access` may say who calls a route, but not remove it: a route is left out of the
 * app's routes (and of Nest's route log) only by the endpoint's own options, which the decorator
 * reads when the class is defined; the module's options come later.
 */
const defaultsRule: OptionRule = {
  rule: endpointRule.rule,
  check(value, path, subject) {
    endpointRule.check(value, path, subject);
    const access = (value as SseEndpointOptions).access;
    for (const key of ['stats', 'broadcast'] as const) {
      if (access?.[key] === 'disabled') {
        throw optionError(
          subject,
          `${path}.access.${key}`,
          'disabled',
          "'guarded', 'global-guards' or 'public'",
          `Disable a route in each endpoint's own options (@SseEndpoint(path, { access: { ${key}: 'disabled' } })): only there is it left out of the app's routes.`,
        );
      }
    }
  },
};

const moduleRule = R.object({
  transport: R.custom('an SseTransport (backend, start, publish, replay, clusterStats and close)', isTransport),
  defaults: defaultsRule,
  maxConnections: count,
  drainTimeout: R.integer({ min: 0, max: MAX_TIMER_MS, unit: 'ms' }),
  replayLimit: R.integer({ min: 0, unit: 'events' }),
  readyTimeout: R.integer({ min: 1, max: MAX_TIMER_MS, unit: 'ms' }),
} satisfies Record<keyof SseModuleOptions, OptionRule>);

const asyncRule = R.object({
  imports: R.arrayOf(R.custom('a module', (v) => v !== undefined && v !== null)),
  useFactory: R.function(),
  inject: R.arrayOf(R.custom('an injection token', (v) => v !== undefined && v !== null)),
  useClass: R.function(),
  useExisting: R.function(),
  extraProviders: R.arrayOf(R.custom('a provider', (v) => v !== undefined && v !== null)),
});

/** Checks what `forRootAsync` was given: known keys, and exactly one way to make the options. */
export function validateAsyncOptions(subject: string, options: unknown): void {
  validateOptions(subject, options, asyncRule);
  const given = (['useFactory', 'useClass', 'useExisting'] as const).filter((k) => (options as Record<string, unknown>)[k] !== undefined);
  if (given.length !== 1) {
    throw new SseConfigurationError(
      given.length === 0
        ? `${subject} needs useFactory, useClass or useExisting.`
        : `${subject} got ${given.join(' and ')}; give exactly one of useFactory, useClass and useExisting.`,
    );
  }
}

/** Throws `SseConfigurationError` naming the first option of an `@SseEndpoint` that breaks its rule. */
export function validateEndpointOptions(subject: string, options: unknown): void {
  validateOptions(subject, options, endpointRule);
}

/** Throws `SseConfigurationError` naming the first module option that breaks its rule. */
export function validateModuleOptions(subject: string, options: unknown): void {
  validateOptions(subject, options, moduleRule);
}

/** True when `value` has every member the hub calls on a transport. */
export function isTransport(value: unknown): value is SseTransport {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as SseTransport).backend === 'string' &&
    ['start', 'publish', 'replay', 'clusterStats', 'close'].every((m) => hasMethod(value, m))
  );
}

function hasMethod(value: unknown, name: string): boolean {
  return value !== null && typeof value === 'object' && typeof (value as Record<string, unknown>)[name] === 'function';
}

function problemOf(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return `(${(err as Error).message})`;
  }
}

