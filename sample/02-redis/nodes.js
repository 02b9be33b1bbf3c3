// `npm run start:nodes`: starts two nodes of the Redis sample (ports 3000 and 3001, or CLUSTER_PORTS=a,b) against
// REDIS_URL, prefixes their output with the port, and forwards Ctrl-C / SIGTERM to both.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), 'dist', 'main.js');
const ports = (process.env.CLUSTER_PORTS || '3000,3001').split(',').map((p) => p.trim()).filter(Boolean);
const children = new Map();
let stopping = false;

ports.forEach((port, index) => {
  const env = { ...process.env, PORT: port };
  // One node is enough to tell the news: the others only relay what is broadcast to them.
  if (index > 0 && process.env.NEWS_INTERVAL_MS === undefined) env.NEWS_INTERVAL_MS = '0';
  const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.set(port, child);
  const relay = (stream, out) => {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop();
      for (const line of lines) out.write(`[node ${port}] ${line}\n`);
    });
  };
  relay(child.stdout, process.stdout);
  relay(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    children.delete(port);
    if (!stopping) {
      console.error(`[node ${port}] exited (${signal ?? code}); stopping the others`);
      process.exitCode = 1;
      stop('SIGTERM');
    }
    if (children.size === 0) process.exit(process.exitCode ?? 0);
  });
});

function stop(signal) {
  stopping = true;
  for (const child of children.values()) child.kill(signal);
  // a node that does not stop in time is killed
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, 10_000).unref();
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
