// The side of every benchmark subject that the runner talks to, over the IPC channel of
// child_process.fork: publish on command or on a timer, report memory, CPU and handles.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';

/** What a subject server does; everything else is the harness's. */
export interface BenchSubject {
  /** Streams open on this process. */
  connections(): number;
  /** Sends one event named `tick` with `data` to every stream, or to the streams of `group`. */
  publish(data: string, group: string | undefined): void;
  close(): Promise<void>;
  /** Figures of its own for the `stats` reply (the routed scenario's counts), if it has any. */
  extraStats?(): Record<string, unknown>;
}

type Command =
  | { cmd: 'publish'; from: number; to: number; start: number; groups: number; size: number }
  | { cmd: 'rate'; from: number; count: number; hz: number; size: number; start?: number }
  | { cmd: 'targets'; names: string[] | null; id: number }
  | { cmd: 'stats'; gc?: boolean; id: number }
  | { cmd: 'profile'; action: 'start' | 'stop'; file?: string; id: number }
  | { cmd: 'exit'; graceMs?: number };

const PAD = 'x'.repeat(1024);

/** The bearer token the load generator sends, which the guarded subject checks. */
export const BENCH_TOKEN = 'bench-token';

/** Microseconds since the epoch, from the monotonic clock (comparable across processes). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The event data: a marker, the sequence number and the send time, padded to `size` bytes.
 * The load generator finds `#s` and reads the two numbers; the padding holds neither.
 */
export function eventData(seq: number, size: number): string {
  const head = `#s${seq} ${nowMicros()}.`;
  return size > head.length ? head + PAD.slice(0, size - head.length) : head;
}

function send(message: unknown): void {
  process.send?.(message);
}

/**
 * Wires a started subject to the runner. `port` is the port it listens on.
 */
export function serve(subject: BenchSubject, port: number): void {
  let profiler: Session | undefined;
  /** Set by `targets`: event `seq` goes to the group `targets[(seq - start) % length]` instead of `g<n>`. */
  let targets: string[] | null = null;
  const groupOf = (seq: number, start: number, groups: number): string | undefined =>
    targets !== null ? targets[(seq - start) % targets.length] : groups > 0 ? `g${(seq - start) % groups}` : undefined;
  const publishRange = (from: number, to: number, start: number, groups: number, size: number): void => {
    for (let seq = from; seq <= to; seq++) subject.publish(eventData(seq, size), groupOf(seq, start, groups));
  };
  process.on('message', async (message: Command) => {
    try {
      switch (message.cmd) {
        case 'publish':
          publishRange(message.from, message.to, message.start, message.groups, message.size);
          break;
        case 'rate': {
          // Events are due on an absolute schedule: a late timer catches up rather than drifting.
          const started = performance.now();
          const interval = 1000 / message.hz;
          const start = message.start ?? message.from;
          let next = 0;
          const tick = (): void => {
            const now = performance.now();
            while (next < message.count && started + next * interval <= now) {
              const seq = message.from + next;
              subject.publish(eventData(seq, message.size), groupOf(seq, start, 0));
              next++;
            }
            if (next < message.count) setTimeout(tick, Math.max(0, started + next * interval - performance.now()));
          };
          tick();
          break;
        }
        case 'stats': {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (message.gc && gc) {
            gc();
            await new Promise((resolve) => setTimeout(resolve, 50));
            gc();
          }
          const memory = process.memoryUsage();
          send({
            type: 'stats',
            id: message.id,
            rss: memory.rss,
            heapUsed: memory.heapUsed,
            handles: process.getActiveResourcesInfo().length,
            cpu: process.cpuUsage(),
            elu: performance.eventLoopUtilization(),
            connections: subject.connections(),
            extra: subject.extraStats?.(),
          });
          break;
        }
        case 'targets':
          targets = message.names;
          send({ type: 'targets', id: message.id });
          break;
        case 'profile':
          if (message.action === 'start') {
            profiler = new Session();
            profiler.connect();
            await profiler.post('Profiler.enable');
            await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
            await profiler.post('Profiler.start');
          } else if (profiler) {
            const { profile } = await profiler.post('Profiler.stop');
            if (message.file) writeFileSync(message.file, JSON.stringify(profile));
            profiler.disconnect();
            profiler = undefined;
          }
          send({ type: 'profile', id: message.id });
          break;
        case 'exit':
          await Promise.race([subject.close(), new Promise((resolve) => setTimeout(resolve, message.graceMs ?? 2000))]);
          process.exit(0);
      }
    } catch (err) {
      send({ type: 'error', message: (err as Error).stack ?? String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port });
}

/** Reports a failure to the runner and exits. */
export function fail(err: unknown): never {
  send({ type: 'error', message: (err as Error)?.stack ?? String(err) });
  process.exit(1);
}

/**
 * The group a `GET /stream?group=gN` request asks for, or null after answering 404 to anything
 * else: the plain-HTTP subjects share one routing rule.
 */
export function streamGroup(
  req: import('node:http').IncomingMessage,
  res: import('node:http').ServerResponse,
): string | undefined | null {
  if (req.method !== 'GET' || !req.url?.startsWith('/stream')) {
    res.statusCode = 404;
    res.end();
    return null;
  }
  const q = req.url.indexOf('?');
  return q === -1 ? undefined : (new URLSearchParams(req.url.slice(q + 1)).get('group') ?? undefined);
}

/** A connection held by a subject that writes SSE by hand (`baseline`, `nest route`). */
export interface PlainClient {
  res: import('node:http').ServerResponse;
  group: string | undefined;
}

/**
 * Opens a stream by hand, as a plain `node:http` handler does: the head at once, no delay on the
 * socket, the connection in `clients` until it closes. Anything but `GET /stream` gets 404.
 */
export function openPlainStream(
  req: import('node:http').IncomingMessage,
  res: import('node:http').ServerResponse,
  clients: Set<PlainClient>,
): void {
  const group = streamGroup(req, res);
  if (group === null) return;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  req.socket.setNoDelay(true);
  const client: PlainClient = { res, group };
  clients.add(client);
  res.on('close', () => clients.delete(client));
}

/** Each event encoded once into a Buffer and written to every matching connection in a loop. */
export function publishPlain(clients: Set<PlainClient>, data: string, group: string | undefined): void {
  const frame = Buffer.from(`event: tick\ndata: ${data}\n\n`);
  for (const client of clients) {
    if (group === undefined || client.group === group) client.res.write(frame);
  }
}

/** The subject of a server that holds `clients` by hand: closing it ends them, then the server. */
export function plainSubject(clients: Set<PlainClient>, server: import('node:http').Server): BenchSubject {
  return {
    connections: () => clients.size,
    publish: (data, group) => publishPlain(clients, data, group),
    close: () =>
      new Promise((resolve) => {
        for (const client of clients) client.res.destroy();
        server.close(() => resolve());
      }),
  };
}
