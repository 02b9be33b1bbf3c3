// Subject 1: plain node:http. Each event is encoded once into a Buffer and written to every
// response in a loop: the practical limit of the runtime. A filtered event scans every
// response and checks its group, as a hand-written loop would.
import http from 'node:http';
import { fail, openPlainStream, type PlainClient, plainSubject, serve } from './harness.js';

const clients = new Set<PlainClient>();

const server = http.createServer((req, res) => openPlainStream(req, res, clients));

const subject = plainSubject(clients, server);

server.on('error', fail);
server.listen(0, '127.0.0.1', () => serve(subject, (server.address() as { port: number }).port));
