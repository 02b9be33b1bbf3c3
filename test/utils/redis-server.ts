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
function readReply(
  port: number,
  command: string,
  complete: (data: string) => string | undefined,
  timeout = 1000,
): Promise<string> {
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
      if (Date.now() > deadline)
        throw new Error(`port ${this.port} stayed in use for ${timeout} ms; redis-server could not start on it`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private spawnServer(): ChildProcess {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--logfile',
        join(this.dir, 'redis.log'),
        '--daemonize',
        'no',
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

  /** True while the server process runs. */
  get running(): boolean {
    return this.child !== undefined;
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

export interface RedisClusterOptions {
  /** Replicas of each master (`--cluster-replicas`): `masters × (1 + replicas)` servers. Default 0. */
  replicas?: number;
  /** How long starting may take, ms. Default 60000. */
  timeout?: number;
}

/** One node as `CLUSTER NODES` describes it. */
export interface RedisClusterNode {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | undefined;
  /** `fail`, `fail?` (suspected) or `noaddr` among its flags. */
  failing: boolean;
  /** Slot ranges served, for a master: [from, to], both included. */
  slots: Array<[number, number]>;
}

/**
 * A real Redis Cluster of `masters` redis-server processes on free loopback ports, each with
 * `replicas` replicas, its slots spread by `redis-cli --cluster create`; ready once every node
 * reports cluster_state:ok and, with replicas, every replica is linked to its master and known as
 * its replica by every node (so that the masters can vote for it when its master fails). A short
 * `cluster-node-timeout` (2 s) makes a failover take a few seconds.
 */
export class RedisCluster {
  private constructor(readonly servers: RedisServer[]) {}

  /** Seed nodes for an ioredis `Cluster` (the servers running now). */
  get nodes(): Array<{ host: string; port: number }> {
    return this.running().map((s) => ({ host: '127.0.0.1', port: s.port }));
  }

  static async start(masters = 3, options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const replicas = options.replicas ?? 0;
    const timeout = options.timeout ?? 60_000;
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        servers.push(
          await RedisServer.start({
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              '2000',
              '--appendfsync',
              'everysec',
            ],
          }),
        );
      }
      const create = spawn(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...servers.map((s) => `127.0.0.1:${s.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      track(create);
      let output = '';
      create.stdout!.on('data', (chunk) => (output += chunk));
      create.stderr!.on('data', (chunk) => (output += chunk));
      const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
      if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}):\n${output.slice(-2000)}`);
      const cluster = new RedisCluster(servers);
      await cluster.until(
        async () => {
          for (const server of servers) {
            if (!(await clusterInfo(server.port).catch(() => '')).includes('cluster_state:ok')) return false;
            const nodes = await cluster.describe(server.port).catch(() => []);
            if (nodes.filter((n) => n.role === 'replica' && !n.failing).length !== masters * replicas) return false;
          }
          for (const node of await cluster.describe(servers[0].port)) {
            if (node.role === 'replica' && !/master_link_status:up/.test(await info(node.port, 'replication').catch(() => '')))
              return false;
          }
          return true;
        },
        timeout,
        'the cluster to be ready (cluster_state:ok, every replica linked)',
      );
      return cluster;
    } catch (err) {
      await Promise.all(servers.map((s) => s.stop()));
      throw err;
    }
  }

  /** The server on `port`. */
  server(port: number): RedisServer {
    const server = this.servers.find((s) => s.port === port);
    if (server === undefined) throw new Error(`no server of this cluster listens on ${port}`);
    return server;
  }

  /** Every node as the first running server sees them (`CLUSTER NODES`). */
  async topology(): Promise<RedisClusterNode[]> {
    return this.describe(this.running()[0].port);
  }

  /** The master serving `slot` now. */
  async ownerOf(slot: number): Promise<RedisServer> {
    const owner = (await this.topology()).find(
      (n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (owner === undefined) throw new Error(`no master serves slot ${slot}`);
    return this.server(owner.port);
  }

  /** The replica of the master on `port` (the first, with several). */
  async replicaOf(port: number): Promise<RedisServer> {
    const nodes = await this.topology();
    const master = nodes.find((n) => n.port === port && n.role === 'master');
    const replica = nodes.find((n) => n.role === 'replica' && n.masterId === master?.id);
    if (replica === undefined) throw new Error(`the master on ${port} has no replica`);
    return this.server(replica.port);
  }

  /**
   * SIGKILLs the master on `port` and waits until its replica took its slots over: every running
   * node reports cluster_state:ok and names the replica as the owner of the dead master's slots.
   * `afterKill` runs once the master is dead, before the wait (to thaw a replica held back, say).
   * Resolves with the promoted server.
   */
  async killMaster(
    port: number,
    options: { timeout?: number; afterKill?: () => void | Promise<void> } = {},
  ): Promise<RedisServer> {
    const nodes = await this.topology();
    const master = nodes.find((n) => n.port === port && n.role === 'master');
    if (master === undefined || master.slots.length === 0) throw new Error(`no master with slots listens on ${port}`);
    const replicas = nodes.filter((n) => n.role === 'replica' && n.masterId === master.id).map((n) => n.port);
    if (replicas.length === 0) throw new Error(`the master on ${port} has no replica to fail over to`);
    const slot = master.slots[0][0];
    await this.server(port).kill('SIGKILL');
    await options.afterKill?.();
    let promoted: RedisServer | undefined;
    await this.until(
      async () => {
        for (const server of this.running()) {
          if (!(await clusterInfo(server.port).catch(() => '')).includes('cluster_state:ok')) return false;
          const owner = (await this.describe(server.port).catch(() => [])).find(
            (n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to),
          );
          if (owner === undefined || !replicas.includes(owner.port)) return false;
          promoted = this.server(owner.port);
        }
        return true;
      },
      options.timeout ?? 30_000,
      `a replica of the master on ${port} to take its slots over`,
    );
    return promoted!;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }

  private running(): RedisServer[] {
    return this.servers.filter((s) => s.running);
  }

  /** `CLUSTER NODES` as one node sees it. */
  private async describe(port: number): Promise<RedisClusterNode[]> {
    const text = await bulkReply(port, 'CLUSTER NODES');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
        const flagList = flags.split(',');
        return {
          id,
          port: Number(/:(\d+)@/.exec(address)?.[1]),
          role: flagList.includes('master') ? 'master' : 'replica',
          masterId: masterId === '-' ? undefined : masterId,
          failing: flagList.some((f) => f === 'fail' || f === 'fail?' || f === 'noaddr'),
          slots: slots
            .filter((s) => !s.startsWith('['))
            .map((s) => {
              const [from, to] = s.split('-').map(Number);
              return [from, to ?? from] as [number, number];
            }),
        };
      });
  }

  /** Polls `check` every 50 ms until it holds; throws after `timeout` ms naming `what`. */
  private async until(check: () => Promise<boolean>, timeout: number, what: string): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** A bulk-string reply of one node, read whole (`CLUSTER INFO`, `CLUSTER NODES`, `INFO`). */
async function bulkReply(port: number, command: string): Promise<string> {
  const reply = await readReply(port, command, (data) => {
    if (data.startsWith('-') && data.includes('\r\n')) return data;
    const header = /^\$(\d+)\r\n/.exec(data);
    return header && data.length >= header[0].length + Number(header[1]) ? data : undefined;
  });
  if (reply.startsWith('-')) throw new Error(`${command}: ${reply.trim()}`);
  return reply.slice(reply.indexOf('\r\n') + 2);
}

/** `CLUSTER INFO` of one node, as text. */
function clusterInfo(port: number): Promise<string> {
  return bulkReply(port, 'CLUSTER INFO');
}

/** One section of `INFO` of one server, as text. */
export function info(port: number, section: string): Promise<string> {
  return bulkReply(port, `INFO ${section}`);
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
    const sentinel = track(
      spawn('redis-server', [conf, '--sentinel', '--logfile', join(dir, 'sentinel.log')], { stdio: 'ignore' }),
    );
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
