import type { IncomingMessage, ServerResponse } from 'node:http';

// Express runs every request through its router: each layer's path matcher, the body parsers
// (a GET has no body, yet they look), then the route. For a stream that is a fifth of the CPU of
// opening it. This module's middleware, near the front of the stack, hands `GET <path>` of a
// stream route to what Express would run for it: the app-wide middleware in between (mounted at
// '/'), then the route, whose Nest handler runs guards, interceptors, pipes and exception filters
// as always. Only the body parsers and the matching of other routes are skipped.

/** The parts of Express's router (`router` 2.x, Express 5) this file reads. */
interface RouterLayer {
  name: string;
  /** Mounted at '/' (any path, nothing trimmed from the URL). */
  slash: boolean;
  handle: unknown;
  route?: { stack: unknown[]; _handlesMethod(method: string): boolean };
  match(path: string): unknown;
  handleRequest(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
}

/** Middleware that do nothing for a request without a body: Nest's body parsers (`body-parser`). */
const BODY_PARSERS = new Set(['jsonParser', 'urlencodedParser', 'rawParser', 'textParser']);

type Next = (err?: unknown) => void;

/** What Express would run for `GET <path>` of one stream route. */
interface DirectRoute {
  /** App-wide middleware after this module's, in order. */
  readonly chain: readonly RouterLayer[];
  readonly route: RouterLayer;
}

/** Stream routes Express may skip its router for, by exact path. */
export class ExpressDirectRoutes {
  private readonly direct = new Map<string, DirectRoute>();

  /** The paths served directly, once planned. */
  paths(): string[] {
    return [...this.direct.keys()];
  }

  /** The middleware, put before the body parsers at start-up; it does nothing until `plan` found routes. */
  readonly middleware = (req: IncomingMessage & { route?: unknown; params?: unknown }, res: ServerResponse, next: Next): void => {
    if (this.direct.size === 0 || req.method !== 'GET') return next();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const direct = this.direct.get(q === -1 ? url : url.slice(0, q));
    // a GET with a body is left to the parsers, as Express would
    if (direct === undefined || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      return next();
    }
    const { chain, route } = direct;
    let i = 0;
    const step = (err?: unknown): void => {
      // an error (or 'router') goes back to Express: its error handlers come after the routes
      if (err !== undefined && err !== 'route') return next(err);
      if (i < chain.length) return chain[i++].handleRequest(req, res, step);
      // what the router sets for a route it dispatches (a stream path has no parameters)
      req.route = route.route;
      req.params = {};
      route.handleRequest(req, res, next);
    };
    step();
  };

  /**
   * Once the app's routes are in place: for each stream path, the route Express would run for
   * `GET <path>`, when only body parsers and routes of other paths come between this module's
   * middleware and it. Returns the paths that keep Express's routing, with why.
   */
  plan(app: unknown, paths: readonly string[]): string[] {
    this.direct.clear();
    const stack = routerStack(app);
    const start = stack?.findIndex((layer) => layer.handle === this.middleware) ?? -1;
    if (stack === undefined || start === -1)
      return paths.map((path) => `${path}: Express's router is not as this module knows it`);
    const kept: string[] = [];
    for (const path of paths) {
      if (/[:*?(]/.test(path)) {
        kept.push(`${path}: it has parameters`);
        continue;
      }
      const found = routeFor(stack, start + 1, path);
      if (typeof found === 'string') kept.push(`${path}: ${found}`);
      else this.direct.set(path, found);
    }
    return kept;
  }
}

function routerStack(app: unknown): RouterLayer[] | undefined {
  const router = (app as { router?: { stack?: unknown } } | undefined)?.router;
  const stack = router?.stack;
  if (!Array.isArray(stack)) return undefined;
  const known = stack.every(
    (layer: Partial<RouterLayer>) =>
      typeof layer?.match === 'function' &&
      typeof layer.handleRequest === 'function' &&
      typeof layer.name === 'string' &&
      typeof layer.slash === 'boolean',
  );
  return known ? (stack as RouterLayer[]) : undefined;
}

/** What serves `GET path` after `from`, or why it may not be run directly. */
function routeFor(stack: readonly RouterLayer[], from: number, path: string): DirectRoute | string {
  const chain: RouterLayer[] = [];
  for (let i = from; i < stack.length; i++) {
    const layer = stack[i];
    if (!layer.match(path)) continue;
    if (layer.route === undefined) {
      if (BODY_PARSERS.has(layer.name)) continue;
      // middleware mounted on a path sees the URL trimmed by the router
      if (!layer.slash) return `middleware '${layer.name}' is mounted on a path that serves it`;
      chain.push(layer);
      continue;
    }
    if (!layer.route._handlesMethod('GET')) continue;
    // one handler, as Nest registers a route
    if (layer.route.stack.length !== 1) return 'its route has several handlers';
    return { chain, route: layer };
  }
  return 'no route serves it';
}
