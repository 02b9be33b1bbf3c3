// Subject 4: better-sse, one Channel, sessions registered as they connect, broadcast with
// the library's defaults (a filter callback for a filtered event).
import http from 'node:http';
import { createChannel, createSession } from 'better-sse';
import { type BenchSubject, fail, serve, streamGroup } from './harness.js';

const channel = createChannel<Record<string, unknown>, { group?: string }>();

const server = http.createServer((req, res) => {
  const group = streamGroup(req, res);
  if (group === null) return;
  createSession<{ group?: string }>(req, res, { state: { group } }).then(
    (session) => channel.register(session),
    () => res.destroy(),
  );
});

const subject: BenchSubject = {
  connections: () => channel.sessionCount,
  publish(data, group) {
    if (group === undefined) channel.broadcast(data, 'tick');
    else channel.broadcast(data, 'tick', { filter: (session) => session.state.group === group });
  },
  close: () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
};

server.on('error', fail);
server.listen(0, '127.0.0.1', () => serve(subject, (server.address() as { port: number }).port));
