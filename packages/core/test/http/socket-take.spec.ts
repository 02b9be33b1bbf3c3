import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { probeSocketTake, socketTakeProblem } from '../../src/http/socket-take.js';

/** Changes the server's state for one request; returns what puts it back (parsers are reused). */
type Change = (req: IncomingMessage, res: ServerResponse) => () => void;

/** Hides a listener of Node's server behind one of another name, which still calls it. */
const renameListener =
  (event: string, name: string): Change =>
  (req) => {
    const socket = req.socket;
    const original = socket.listeners(event).find((listener) => (listener as { name: string }).name === name) as
      ((...args: unknown[]) => unknown) | undefined;
    if (original === undefined) throw new Error(`no '${event}' listener named ${name}`);
    const renamed = function renamed(this: unknown, ...args: unknown[]) {
      return original.apply(this, args);
    };
    socket.removeListener(event, original);
    socket.on(event, renamed);
    return () => {
      socket.removeListener(event, renamed);
      socket.on(event, original);
    };
  };

/** Hides a field the take relies on (an own property over the prototype's, for methods). */
const hide =
  (of: 'parser' | 'res', field: string): Change =>
  (req, res) => {
    const target = (of === 'res' ? res : (req.socket as unknown as { parser: object }).parser) as Record<string, unknown>;
    const own = Object.getOwnPropertyDescriptor(target, field);
    Object.defineProperty(target, field, { value: undefined, configurable: true, writable: true });
    return () => {
      if (own === undefined) delete target[field];
      else Object.defineProperty(target, field, own);
    };
  };

/**
 * What Node's HTTP server must look like for a stream to take its socket, changed one item at a
 * time, on a real server of this Node version: each change is named by the check, so another
 * Node version that differs in any one of them keeps the response path.
 */
describe('socketTakeProblem on a real Node HTTP server', () => {
  let server: Server;
  let port: number;
  let change: Change | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const undo = change?.(req, res);
      const problem = socketTakeProblem(req, res);
      undo?.();
      res.end(problem ?? 'none');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const problemWith = (made: Change | undefined): Promise<string> => {
    change = made;
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
  };

  it('finds everything it relies on as this Node version has it', async () => {
    expect(await problemWith(undefined)).toBe('none');
    expect(await probeSocketTake()).toBeUndefined();
  });

  it.each([
    ['data', 'socketOnData'],
    ['end', 'socketOnEnd'],
    ['close', 'socketOnClose'],
    ['drain', 'socketOnDrain'],
    ['error', 'socketOnError'],
    ['timeout', 'socketOnTimeout'],
    ['pause', 'onSocketPause'],
    ['resume', 'onSocketResume'],
  ])("refuses when the socket's '%s' listener is not Node's %s", async (event, name) => {
    const bound = ['data', 'end', 'close', 'drain'].includes(event) ? `bound ${name}` : name;
    expect(await problemWith(renameListener(event, bound))).toBe(
      `Node's server has no '${event}' listener named ${bound} on the socket`,
    );
  });

  it.each([
    ['parser', 'unconsume', 'the HTTP parser has no unconsume()'],
    ['parser', 'remove', 'the HTTP parser has no remove()'],
    ['parser', 'close', 'the HTTP parser has no close()'],
    ['parser', '_consumed', 'the HTTP parser has no _consumed flag'],
    ['res', 'detachSocket', 'the response has no detachSocket()'],
    ['res', 'chunkedEncoding', 'the response has no chunkedEncoding flag'],
  ] as const)('refuses when the %s has no %s', async (of, field, problem) => {
    expect(await problemWith(hide(of, field))).toBe(problem);
  });

  it('refuses without a parser on the socket, or with write or end wrapped', async () => {
    expect(
      await problemWith((req) => {
        const socket = req.socket as unknown as { parser: unknown };
        const parser = socket.parser;
        socket.parser = null;
        return () => (socket.parser = parser);
      }),
    ).toBe('the connection has no HTTP parser (socket.parser)');
    expect(
      await problemWith((_req, res) => {
        const write = res.write;
        res.write = function wrapped(this: ServerResponse, ...args: unknown[]) {
          return (write as (...a: unknown[]) => boolean).apply(this, args);
        } as typeof res.write;
        return () => undefined;
      }),
    ).toBe('middleware wraps res.write or res.end (compression, for one)');
  });
});
