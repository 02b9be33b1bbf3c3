import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';
import { SseEndpoint, SseHub } from '@nest-sse/core';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually, type TestApp } from '../utils/app.js';
import { startAppOnClient } from '../utils/redis-app.js';
import { info, rawCommand, RedisCluster, type RedisServer } from '../utils/redis-server.js';

@SseEndpoint('/users', { heartbeatInterval: 0, metadata: { allowedKeys: ['user_id'] } })
class UsersController {}

const PREFIX = 'rc';
const EVENTS = ['update', 'sse.reset'];

/**
 * Routed delivery (`routeBy: 'user_id'`) on a real Redis Cluster of three masters, each with a
 * replica: three Nest apps on ioredis `Cluster` clients, real SSE clients. Each user's events go to
 * the Stream and shard channel of that user's own slot, so the users spread over the masters; a
 * master is SIGKILLed while events are published, and its replica takes over.
 */
describe('Routed delivery on Redis Cluster with replicas (failover)', () => {
  let cluster: RedisCluster;
  let admin: Cluster;
  let a: TestApp;
  let b: TestApp;
  let c: TestApp;
  const clients: SseTestClient[] = [];

  const slotOf = async (user: string) => Number(await admin.cluster('KEYSLOT', `{${PREFIX}/${user}}:events`));
  const ownerOf = async (user: string) => (await cluster.ownerOf(await slotOf(user))).port;

  async function client(app: TestApp, user: string, headers?: Record<string, string>): Promise<SseTestClient> {
    const x = await connect(app.url, `/users?user_id=${user}`, { events: EVENTS, headers });
    clients.push(x);
    return x;
  }

  /** Calls of `command` each server has run, by port (INFO commandstats; a script's own calls included). */
  async function calls(ports: number[], command: string): Promise<Map<number, number>> {
    const re = new RegExp(`cmdstat_${command}:calls=(\\d+)`);
    return new Map(
      await Promise.all(ports.map(async (port) => [port, Number(re.exec(await info(port, 'commandstats'))?.[1] ?? 0)] as const)),
    );
  }

  beforeAll(async () => {
    cluster = await RedisCluster.start(3, { replicas: 1 });
    admin = new Cluster(cluster.nodes);
    admin.on('error', () => undefined);
    const app = () => {
      const commands = new Cluster(cluster.nodes);
      commands.on('error', () => undefined);
      return startAppOnClient(commands, PREFIX, [UsersController], { routeBy: 'user_id' });
    };
    [a, b, c] = await Promise.all([app(), app(), app()]);
  }, 120_000);

  afterEach(() => {
    for (const x of clients.splice(0)) x.close();
  });

  afterAll(async () => {
    for (const x of clients.splice(0)) x.close();
    await Promise.all([a, b, c].map((t) => t?.close()));
    admin?.disconnect();
    await cluster?.stop();
  });

  it('spreads users over every master: each serves the routed publishes of the users whose slots it owns', async () => {
    const users = Array.from({ length: 45 }, (_, i) => `u-${i}`);
    const slots = await Promise.all(users.map(slotOf));
    expect(new Set(slots).size).toBe(users.length);
    const masters = (await cluster.topology()).filter((n) => n.role === 'master').map((n) => n.port);
    expect(masters).toHaveLength(3);
    const owners = await Promise.all(users.map(ownerOf));
    expect(new Set(owners)).toEqual(new Set(masters));

    const apps = [a, b, c];
    const onUser = await Promise.all(users.map((user, i) => client(apps[i % 3], user)));
    const before = await Promise.all([calls(masters, 'evalsha'), calls(masters, 'spublish')]);
    // every app publishes to every user: 5 events each
    await Promise.all(
      users.flatMap((user) =>
        Array.from({ length: 5 }, (_, k) =>
          apps[k % 3].app.get(SseHub).broadcast({ event: 'update', data: `${user}#${k}`, filter: { user_id: user } }),
        ),
      ),
    );
    await Promise.all(onUser.map((x) => x.waitForCount(5, 'update', { timeout: 10_000 })));
    users.forEach((user, i) => {
      // one publisher per app: each app's events arrive in the order it made them
      const got = onUser[i].named('update').map((e) => e.data);
      expect([...got].sort()).toEqual(Array.from({ length: 5 }, (_, k) => `${user}#${k}`));
    });
    const after = await Promise.all([calls(masters, 'evalsha'), calls(masters, 'spublish')]);
    const usersOn = (port: number) => owners.filter((o) => o === port).length;
    const lines = masters.map((port) => {
      const scripts = after[0].get(port)! - before[0].get(port)!;
      const spublish = after[1].get(port)! - before[1].get(port)!;
      // each event is SPUBLISHed once, by the master owning its user's slot
      expect(spublish).toBe(usersOn(port) * 5);
      expect(scripts).toBeGreaterThan(0);
      return `master :${port}: ${usersOn(port)} users, ${scripts} publish script runs, ${spublish} SPUBLISH`;
    });
    console.log(`Routed publishes per master (45 users x 5 events from 3 apps):\n${lines.join('\n')}`);
  }, 60_000);
});
