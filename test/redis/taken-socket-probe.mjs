// Loaded with `--import` into the processes of `npm run start:cluster` by start-cluster.e2e.spec.ts:
// prints a line for each connection whose socket a stream took from Node's HTTP server (the
// response let go of it, and the server's parser with it), which is what a worker of node:cluster
// must still allow when the primary hands it the connection.
import http from 'node:http';

const detach = http.ServerResponse.prototype.detachSocket;
http.ServerResponse.prototype.detachSocket = function (socket) {
  detach.call(this, socket);
  // A finished response detaches too, but leaves the parser for the next request on the connection.
  queueMicrotask(() => {
    if (socket.parser === null && !socket.destroyed) console.log(`[probe] socket taken by a stream in pid ${process.pid}`);
  });
};
