/** Texts of errors and log lines, in one place. */

export const routeClosed = (route: string, className: string, key: 'stats' | 'broadcast'): string =>
  `${route} is closed by default. Protect it with a guard (@UseGuards on ${className}, or guards.${key} in the @SseEndpoint options), ` +
  `or say who may call it with access: { ${key}: 'global-guards' | 'public' }.`;

export const routePublic = (route: string): string =>
  `${route} is public (access: 'public'): anyone who can reach this server may call it.`;

export const memberClash = (className: string, member: string, route: string): string =>
  `@SseEndpoint on ${className}: the class already has a member named '${member}', which the decorator adds to serve ${route}. ` +
  `Rename your member.`;

export const routeClash = (className: string, member: string, route: string): string =>
  `@SseEndpoint on ${className}: method '${member}' is mapped to ${route}, which the decorator generates. ` +
  `Move your method to another path, or turn the generated route off with access: { ... : 'disabled' } and keep yours under a different path.`;

export const duplicateEndpoint = (path: string, a: string, b: string): string =>
  `@SseEndpoint('${path}') is declared on both ${a} and ${b}; each endpoint path must be unique.`;

export const missingModule = (className: string): string =>
  `${className} is an @SseEndpoint, but the app has no SseHub: import SseModule.forRoot() (or forRootAsync()) once, in the root module.`;

export const perKeyUnreachable = (subject: string, key: string, allowed: readonly string[]): string =>
  `${subject}: maxConnectionsPerKey.key is "${key}", which never becomes this endpoint's metadata: metadata.allowedKeys ` +
  `(${allowed.length ? allowed.join(', ') : 'empty'}) leaves it out and there is no trustedMetadata, so the limit would never apply. ` +
  `Add '${key}' to allowedKeys, or give it in trustedMetadata.`;

export const tooManyConnections = (scope: string, max: number): string =>
  `Too many open streams ${scope} (limit ${max}); try again later.`;

export const writePath = (problem: string | undefined, through: readonly string[], endpoints: number): string => {
  if (through.length === endpoints) return 'Streams write through the response (directSocket: false on every endpoint).';
  if (problem !== undefined)
    return `Streams write through the response: Node ${process.version} fails a check the socket take needs (${problem}).`;
  const except = through.length > 0 ? `; ${through.join(', ')} write through the response (directSocket: false)` : '';
  return (
    `Streams take their connection's socket once the head is sent: Node ${process.version}'s HTTP server has every listener and field ` +
    `the take relies on${except}. A request that middleware wraps, or with another pipelined behind it, writes through the response.`
  );
};

export const hubImportedTwice = (count: number, importers: string[]): string =>
  `SseModule is configured ${count} times in this app${importers.length ? ` (imported by ${importers.join(', ')})` : ''}: ` +
  `each forRoot()/forRootAsync() makes its own hub, and broadcasts on one would never reach the other's streams. ` +
  `Import SseModule.forRoot() once, in the root module; it is global, so every other module injects SseHub without importing it.`;

export const hubNotReady = (ms: number): string =>
  `The broadcast waited ${ms} ms (readyTimeout) for the app to start and it did not: call app.init() or app.listen() ` +
  `before broadcasting, or broadcast from onApplicationBootstrap or later.`;

export const hubStartFailed = (reason: string): string =>
  `The broadcast was not sent: the SSE transport failed to start (${reason}).`;

export const hubClosed = (): string =>
  `The broadcast was not sent: the application is closed (app.close() was called). Broadcast before closing, or in a new app.`;
