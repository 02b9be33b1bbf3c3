// Subject: a plain Express 5 app (no Nest) with one route that writes an SSE head by hand, as
// the `baseline` does. With BENCH_PARSERS=1 it first runs the two body parsers a Nest app has by
// default (JSON and URL-encoded). Beside `baseline` and `nest route`, it splits what a stream
// opened through a Nest route on Express costs: Express itself, its parsers, then Nest.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { fail, openPlainStream, type PlainClient, plainSubject, serve } from './harness.js';

const clients = new Set<PlainClient>();
const app = express();
if (process.env.BENCH_PARSERS === '1') app.use(express.json(), express.urlencoded({ extended: true }));
app.get('/stream', (req, res) => openPlainStream(req, res, clients));

const server = app.listen(0, '127.0.0.1', () => serve(plainSubject(clients, server), (server.address() as AddressInfo).port));
server.on('error', fail);
