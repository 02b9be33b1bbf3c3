import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

// HTTP/1.1 answers pipelined requests in order, and Node's server holds a response back (with no
// socket) until the ones before it are done, yet hands every request to the app as soon as it is
// parsed. A request queued behind an event stream, which never finishes, would run (a POST's side
// effects included) and never be answered. So a request is handed on only when its turn comes;
// behind a stream it never comes, and the connection closes when the stream ends.

/**
 * The most requests one connection may have pipelined and not yet handed on (waiting for their
 * turn, or refused behind an event stream); past it the connection closes. Each one holds Node's
 * request and response until the connection goes, and a stream's connection may live for hours.
 */
export const MAX_PIPELINED = 64;

// Connections an event stream owns: requests pipelined behind the stream are never served.
const streamConnections = new WeakSet<Socket>();

/** The requests of one connection waiting for their turn, and how many were refused on it. */
interface ConnectionTurns {
  waiting: Set<() => void>;
  refused: number;
}

// Created with the first request that has to wait: one 'close' listener per connection, however
// many requests wait on it (one each would make a flood of them quadratic to settle).
const turns = new WeakMap<Socket, ConnectionTurns>();

function turnsOf(socket: Socket): ConnectionTurns {
  let state = turns.get(socket);
  if (state === undefined) {
    const created: ConnectionTurns = { waiting: new Set(), refused: 0 };
    turns.set(socket, created);
    socket.once('close', () => settleAll(created));
    state = created;
  }
  return state;
}

function settleAll(state: ConnectionTurns): void {
  const waiting = [...state.waiting];
  state.waiting.clear();
  for (const settle of waiting) settle();
}

/**
 * A request behind an event stream: never handed on. Its body is read and dropped, so that the
 * connection keeps being read and a client that leaves is seen at once.
 */
function refuse(req: IncomingMessage, socket: Socket): false {
  req.resume();
  const state = turnsOf(socket);
  if (++state.refused > MAX_PIPELINED) socket.destroy();
  return false;
}

/**
 * Waits for this request's turn on its connection. Resolves true when its response is the one
 * the connection is writing, false when the connection closed first or is owned by an event
 * stream (the request is then never served). More than `MAX_PIPELINED` requests waiting on one
 * connection close it.
 */
export function awaitTurn(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean> {
  // HTTP/2 multiplexes: each stream is its own request, with its own close.
  if (req.httpVersionMajor >= 2) return true;
  const socket = req.socket;
  // not a connection of Node's server (an injected request): nothing is queued on it
  if (!(socket instanceof Socket)) return true;
  if (socket.destroyed) return false;
  if (streamConnections.has(socket)) return refuse(req, socket);
  if (res.socket != null) return true;
  const state = turnsOf(socket);
  if (state.waiting.size >= MAX_PIPELINED) {
    socket.destroy();
    return false;
  }
  return new Promise((resolve) => {
    // its turn came, the connection closed, or an event stream took it
    const settle = (): void => {
      res.off('socket', settle);
      state.waiting.delete(settle);
      resolve(!socket.destroyed && (!streamConnections.has(socket) || refuse(req, socket)));
    };
    res.once('socket', settle);
    state.waiting.add(settle);
  });
}

/**
 * Marks the connection as an event stream's own: the requests waiting behind it are refused
 * now, and any that arrive later as they come (see `awaitTurn`).
 */
export function claimConnection(socket: Socket): void {
  streamConnections.add(socket);
  const state = turns.get(socket);
  if (state !== undefined) settleAll(state);
}

/** An Express middleware of this module's, as `expressRequestTurn` runs it. */
export type ExpressHook = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * Express: the app's first middleware (added when the app is created), which hands a request on
 * only when its turn comes (see `awaitTurn`), to `then` (the broadcast body reader): one layer of
 * the router for both, which every request of the app walks.
 */
export function expressRequestTurn(then: ExpressHook) {
  return function sseRequestTurn(req: IncomingMessage, res: ServerResponse, next: () => void): void {
    const turn = awaitTurn(req, res);
    if (turn === true) then(req, res, next);
    else if (turn !== false) void turn.then((mine) => mine && then(req, res, next));
  };
}

/** Fastify: an `onRequest` hook that hands a request on only when its turn comes. */
export function fastifyRequestTurn() {
  return function sseRequestTurn(
    request: { raw: IncomingMessage },
    reply: { raw: ServerResponse; hijack(): unknown },
    done: () => void,
  ): void {
    const turn = awaitTurn(request.raw, reply.raw);
    if (turn === true) done();
    // never answered: Fastify leaves the response alone
    else if (turn === false) reply.hijack();
    else void turn.then((mine) => (mine ? done() : reply.hijack()));
  };
}
