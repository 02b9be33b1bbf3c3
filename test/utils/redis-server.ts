import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every server and process the helpers started, killed if the test process exits early. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Registers a child process to be killed when this test process exits, whatever happens. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A free loopback TCP port (free when asked; the caller binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Sends one inline command and resolves with the reply text once `complete` says it is whole;
 * rejects on a socket error, on a close before that, or after `timeout` ms.
 */
function readReply(port: number, command: string, complete: (data: string) => string | undefined, timeout = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let settled = false;
    const settle = (err: Error | undefined, reply?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => settle(new Error(`no reply to ${command} within ${timeout} ms`)), timeout);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const reply = complete(data);
      if (reply !== undefined) settle(undefined, reply);
    });
    socket.on('error', (err) => settle(err));
    socket.on('close', () => settle(new Error(`connection closed before the whole reply to ${command}`)));
  });
}

/** Sends one inline command and resolves with the first reply line. */
export function rawCommand(port: number, command: string, timeout = 1000): Promise<string> {
  return readReply(
    port,
    command,
    (data) => {
      const end = data.indexOf('\r\n');
      return end === -1 ? undefined : data.slice(0, end);
    },
    timeout,
  );
}

/** redis-server could not bind its port: something else holds it. */
export class PortInUseError extends Error {
  override name = 'PortInUseError';
  constructor(readonly port: number) {
    super(`port ${port} is in use; redis-server could not bind it`);
  }
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, for example `['--maxmemory', '10mb']`. */
  args?: string[];
}

/**
 * A real `redis-server` on a free loopback port, with its data in a temporary folder: append-only
 * file fsynced on every write, so what it acknowledged survives a SIGKILL and a restart.
 */
export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    // A port found free can be taken before redis-server binds it (by another program, or as the
    // local end of some outgoing connection): then it starts on another one.
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'nest-sse-redis-'));
      const server = new RedisServer(await freePort(), dir, options.args ?? []);
      try {
        await server.launch(10_000, false);
        return server;
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        if (!(err instanceof PortInUseError) || attempt === 3) throw err;
      }
    }
  }

  /**
   * Starts the server (again) on the same port and folder and waits until it answers PING. When
   * the port is in use (on a restart, some outgoing connection may hold it for a while), it tries
   * again until `timeout` if `waitForPort`, and otherwise fails with a `PortInUseError`.
   */
  async launch(timeout = 10_000, waitForPort = true): Promise<void> {
    if (this.child !== undefined) throw new Error('redis-server is already running');
    const deadline = Date.now() + timeout;
    for (;;) {
      const logStart = this.log().length;
      const child = this.spawnServer();
      for (;;) {
        if (this.child !== child) break;
        try {
          if ((await rawCommand(this.port, 'PING', 500)) === '+PONG' && this.child === child) return;
        } catch {
          // not listening yet, or still loading its data
        }
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${timeout} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      // it exited: the log says why
      await new Promise((resolve) => setTimeout(resolve, 0));
      const log = this.log().slice(logStart);
      if (!/Address already in use/i.test(log)) throw new Error(`redis-server exited at start; its log:\n${log.slice(-2000)}`);
      if (!waitForPort) throw new PortInUseError(this.port);
      if (Date.now() > deadline) throw new Error(`port ${this.port} stayed in use for ${timeout} ms; redis-server could not start on it`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private spawnServer(): ChildProcess {
    const child = spawn(
      'redis-server',
      [
        '--port', String(this.port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'yes',
        '--appendfsync', 'always',
        '--dir', this.dir,
        '--logfile', join(this.dir, 'redis.log'),
        '--daemonize', 'no',
        ...this.args,
      ],
      { stdio: 'ignore' },
    );
    track(child);
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    return child;
  }

  /** Kills the server (SIGKILL by default: no shutdown, no save) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** Sends a signal without waiting for anything: SIGSTOP freezes the server with its connections open, SIGCONT thaws it. */
  signal(signal: NodeJS.Signals): void {
    if (this.child === undefined) throw new Error('redis-server is not running');
    this.child.kill(signal);
  }

  /** Stops the server and removes its folder. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The server's log so far. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'redis.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/**
 * A real Redis Cluster of `masters` redis-server processes (no replicas) on free loopback ports,
 * its slots spread by `redis-cli --cluster create`; ready once every node reports cluster_state:ok.
 */
export class RedisCluster {
  private constructor(readonly servers: RedisServer[]) {}

  /** Seed nodes for an ioredis `Cluster`. */
  get nodes(): Array<{ host: string; port: number }> {
    return this.servers.map((s) => ({ host: '127.0.0.1', port: s.port }));
  }

  static async start(masters = 3, timeout = 60_000): Promise<RedisCluster> {
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        servers.push(
          await RedisServer.start({
            args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--appendfsync', 'everysec'],
          }),
        );
      }
      const create = spawn(
        'redis-cli',
        ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      track(create);
      let output = '';
      create.stdout!.on('data', (chunk) => (output += chunk));
      create.stderr!.on('data', (chunk) => (output += chunk));
      const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
      if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}):\n${output.slice(-2000)}`);
      const deadline = Date.now() + timeout;
      for (const server of servers) {
        for (;;) {
          const info = await clusterInfo(server.port).catch(() => '');
          if (info.includes('cluster_state:ok')) break;
          if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok within ${timeout} ms`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      return new RedisCluster(servers);
    } catch (err) {
      await Promise.all(servers.map((s) => s.stop()));
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** `CLUSTER INFO` of one node, as text (a bulk reply read whole). */
function clusterInfo(port: number): Promise<string> {
  return readReply(port, 'CLUSTER INFO', (data) => {
    const header = /^\$(\d+)\r\n/.exec(data);
    return header && data.length >= header[0].length + Number(header[1]) ? data.slice(header[0].length) : undefined;
  });
}

/**
 * A real Sentinel setup: a master, one replica of it, and one `redis-server --sentinel` watching
 * them as `name` (quorum 1, down after 1 s), all on free loopback ports.
 */
export class RedisSentinelSetup {
  private constructor(
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinelPort: number,
    readonly name: string,
    private readonly sentinel: ChildProcess,
    private readonly dir: string,
  ) {}

  /** Sentinels for an ioredis `Redis` client (`{ sentinels, name }`). */
  get sentinels(): Array<{ host: string; port: number }> {
    return [{ host: '127.0.0.1', port: this.sentinelPort }];
  }

  static async start(name = 'nest-sse', timeout = 60_000): Promise<RedisSentinelSetup> {
    const master = await RedisServer.start();
    const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const dir = mkdtempSync(join(tmpdir(), 'nest-sse-sentinel-'));
    const port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const sentinel = track(spawn('redis-server', [conf, '--sentinel', '--logfile', join(dir, 'sentinel.log')], { stdio: 'ignore' }));
    const setup = new RedisSentinelSetup(master, replica, port, name, sentinel, dir);
    try {
      // ready once the sentinel has found the replica (without it there is nothing to fail over to)
      const deadline = Date.now() + timeout;
      for (;;) {
        const reply = await rawCommand(port, `SENTINEL REPLICAS ${name}`, 500).catch(() => '');
        if (/^\*[1-9]/.test(reply)) break;
        if (Date.now() > deadline) throw new Error(`the sentinel did not see the replica within ${timeout} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return setup;
    } catch (err) {
      await setup.stop();
      throw err;
    }
  }

  /** The port of the master the sentinel names now. */
  async masterPort(): Promise<number> {
    // a two-element array reply: *2, $len, host, $len, port
    const reply = await readReply(this.sentinelPort, `SENTINEL GET-MASTER-ADDR-BY-NAME ${this.name}`, (data) =>
      data.split('\r\n').length >= 6 ? data : undefined,
    );
    return Number(reply.split('\r\n')[4]);
  }

  async stop(): Promise<void> {
    this.sentinel.kill('SIGKILL');
    await Promise.all([this.master.stop(), this.replica.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
