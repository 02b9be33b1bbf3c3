// Subject 1: plain node:http. Each event is encoded once into a Buffer and written to every
// response in a loop: the practical limit of the runtime. A filtered event scans every
// response and checks its group, as a hand-written loop would.
import http, { type ServerResponse } from 'node:http';
import { type BenchSubject, fail, serve, streamGroup } from './harness.js';

interface Client {
  res: ServerResponse;
  group: string | undefined;
}

const clients = new Set<Client>();

const server = http.createServer((req, res) => {
  const group = streamGroup(req, res);
  if (group === null) return;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  req.socket.setNoDelay(true);
  const client: Client = { res, group };
  clients.add(client);
  res.on('close', () => clients.delete(client));
});

const subject: BenchSubject = {
  connections: () => clients.size,
  publish(data, group) {
    const frame = Buffer.from(`event: tick\ndata: ${data}\n\n`);
    for (const client of clients) {
      if (group === undefined || client.group === group) client.res.write(frame);
    }
  },
  close: () =>
    new Promise((resolve) => {
      for (const client of clients) client.res.destroy();
      server.close(() => resolve());
    }),
};

server.on('error', fail);
server.listen(0, '127.0.0.1', () => serve(subject, (server.address() as { port: number }).port));
