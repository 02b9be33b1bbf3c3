import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../utils/app.js';
import { track } from '../utils/redis-server.js';

const here = dirname(fileURLToPath(import.meta.url));
/** What a node, or a sample, prints once it listens: the port is in one of the groups. */
const LISTENING = /READY (\d+)|listening on http:\/\/[^:]+:(\d+)|nest-sse sample on http:\/\/[^:]+:(\d+)/;
/** The compiled test node (`npm run build` makes it). */
export const NODE_MAIN = join(here, 'node', 'dist', 'main.js');

/**
 * One app node in its own Node process on a free port. Its output is kept, so a test can look
 * for a log line; every wait is bounded; the process dies with the test process.
 */
export class NodeProcess {
  private out = '';
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      this.out += chunk.toString('utf8');
      for (const listener of this.listeners) listener();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts `main` (the test node by default) with these environment variables and waits for READY. */
  static async start(name: string, env: Record<string, string | number | undefined>, main = NODE_MAIN, timeout = 60_000): Promise<NodeProcess> {
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...process.env, PORT: 0, EXIT_WITH_PARENT: 1, NEWS_INTERVAL_MS: 0, ...env })) {
      if (value !== undefined) vars[key] = String(value);
    }
    const child = track(spawn(process.execPath, [main], { env: vars, stdio: ['pipe', 'pipe', 'pipe'] }));
    const node = new NodeProcess(name, child);
    try {
      const match = LISTENING.exec(await node.waitForOutput(LISTENING, timeout))!;
      node.port = Number(match[1] ?? match[2] ?? match[3]);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`node ${name} did not start: ${(err as Error).message}\n${node.output().slice(-3000)}`);
    }
    return node;
  }

  output(): string {
    return this.out;
  }

  /** Resolves with the output once it matches `pattern`; rejects after `timeout` ms or when the process exits. */
  waitForOutput(pattern: RegExp, timeout = 5000): Promise<string> {
    if (pattern.test(this.out)) return Promise.resolve(this.out);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) reject(err);
        else resolve(this.out);
      };
      const check = () => {
        if (pattern.test(this.out)) done();
      };
      const timer = setTimeout(() => done(new Error(`no ${pattern} from ${this.name} within ${timeout} ms`)), timeout);
      this.listeners.add(check);
      void this.exited.then(() => {
        if (this.listeners.has(check)) done(new Error(`${this.name} exited before printing ${pattern}`));
      });
    });
  }

  async post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
    const res = await fetch(this.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`POST ${path} on ${this.name}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<any> {
    const res = await fetch(this.url + path, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${path} on ${this.name}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  /** Sends a signal and waits (bounded) for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeout = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    if ((await within(this.exited, timeout)) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Ends the process whatever state it is in. */
  stop(): Promise<void> {
    return this.kill('SIGTERM', 3000);
  }
}

/** Resolves with what `promise` gives, or with 'timeout' after `ms`; leaves no timer behind. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once a loopback connection to `port` holds bytes its server has not read yet (Linux's
 * /proc/net/tcp): a request sent to a stopped process has arrived and waits for it.
 */
export async function requestWaiting(port: number, timeout = 5000): Promise<void> {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  await eventually(
    async () =>
      (await readFile('/proc/net/tcp', 'utf8'))
        .split('\n')
        .slice(1)
        .some((line) => {
          // sl local_address rem_address st tx_queue:rx_queue ...; st 01 is ESTABLISHED
          const [, address, , state, queues] = line.trim().split(/\s+/);
          return address?.endsWith(local) && state === '01' && parseInt(queues.split(':')[1], 16) > 0;
        }),
    timeout,
    `a request waiting on port ${port}`,
  );
}
