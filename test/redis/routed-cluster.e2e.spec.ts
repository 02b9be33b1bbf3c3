import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { SseEndpoint, SseHub, SseTransport } from '@nest-sse/core';
import type { SseTestClient } from '@nest-sse/testing';
import { connect, eventually, type TestApp } from '../utils/app.js';
import type { RedisTransport } from '@nest-sse/redis';
import { startAppOnClient } from '../utils/redis-app.js';
import { info, rawCommand, RedisCluster } from '../utils/redis-server.js';

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
    const app = (publishTimeout?: number) => {
      const commands = new Cluster(cluster.nodes);
      commands.on('error', () => undefined);
      return startAppOnClient(commands, PREFIX, [UsersController], { routeBy: 'user_id', publishTimeout });
    };
    // C publishes: it gives up on a broadcast Redis has not taken within 2.5 s, shorter than a failover
    [a, b, c] = await Promise.all([app(), app(), app(2500)]);
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
      return `master :${port}: ${usersOn(port)} users, ${spublish} SPUBLISH, ${scripts} EVALSHA (a first NOSCRIPT per publisher included)`;
    });
    console.log(`Routed publishes per master (45 users x 5 events from 3 apps):\n${lines.join('\n')}`);
  }, 60_000);

  /**
   * Publishes `<user>#<n>` to each user from app C, one at a time per user (each waits for the one
   * before it) at a steady pace, until stopped; records which were accepted and which rejected.
   */
  function publishing(users: string[], everyMs = 20) {
    const hub = c.app.get(SseHub);
    const accepted = new Map(users.map((u) => [u, [] as number[]]));
    const rejected = new Map(users.map((u) => [u, [] as Array<{ n: number; error: string }>]));
    let stopped = false;
    const loops = users.map(async (user) => {
      for (let n = 0; !stopped; n++) {
        try {
          await hub.broadcast({ event: 'update', data: `${user}#${n}`, filter: { user_id: user } });
          accepted.get(user)!.push(n);
        } catch (err) {
          rejected.get(user)!.push({ n, error: `${(err as Error).name}: ${(err as Error).message}` });
        }
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    });
    return {
      accepted,
      rejected,
      /** Resolves once every user has `count` more accepted events than now. */
      async more(count: number, timeout = 20_000): Promise<void> {
        const target = new Map(users.map((u) => [u, accepted.get(u)!.length + count]));
        await eventually(
          () => users.every((u) => accepted.get(u)!.length >= target.get(u)!),
          timeout,
          `${count} more accepted events per user`,
        );
      },
      async stop(): Promise<void> {
        stopped = true;
        await Promise.all(loops);
      },
    };
  }

  /** The numbers of a client's events of `user`, split at each sse.reset. */
  function segments(x: SseTestClient, user: string): number[][] {
    const out: number[][] = [[]];
    for (const e of x.events) {
      if (e.event === 'sse.reset') out.push([]);
      else if (e.event === 'update') {
        const [who, n] = e.data.split('#');
        expect(who).toBe(user);
        out[out.length - 1].push(Number(n));
      }
    }
    return out;
  }

  /**
   * What the product guarantees a client of `user`: within each stretch between resets its events
   * are in the order published, none twice; every accepted event arrived, or the client was told
   * with sse.reset. Returns the accepted events it did not get.
   */
  function check(x: SseTestClient, user: string, accepted: number[], from = 0): number[] {
    const parts = segments(x, user);
    for (const part of parts) {
      for (let i = 1; i < part.length; i++) expect(part[i]).toBeGreaterThan(part[i - 1]);
    }
    const got = new Set(parts.flat());
    const missing = accepted.filter((n) => n >= from && !got.has(n));
    if (missing.length > 0) expect(x.named('sse.reset').length).toBeGreaterThan(0);
    return missing;
  }

  it("keeps every user's events in order, once, through a master SIGKILLed while publishing; a loss is told with sse.reset", async () => {
    const users = Array.from({ length: 45 }, (_, i) => `f-${i}`);
    const owners = await Promise.all(users.map(ownerOf));
    const masters = [...new Set(owners)];
    // two users per master
    const busy = masters.flatMap((m) => users.filter((_, i) => owners[i] === m).slice(0, 2));
    const victim = owners[users.indexOf(busy[0])];
    const onA = await Promise.all(busy.map((u) => client(a, u)));
    const onB = await Promise.all(busy.map((u) => client(b, u)));
    const pub = publishing(busy);
    await pub.more(10);
    // a client of a user on the victim leaves before the failover and comes back after it
    const leaving = await client(a, busy[0]);
    await leaving.waitFor('update');
    leaving.close();
    const lastId = leaving.named('update').at(-1)!.id;
    const startedAt = Date.now();
    const promoted = await cluster.killMaster(victim);
    const failoverMs = Date.now() - startedAt;
    await pub.more(10);
    await pub.stop();
    const back = await client(b, busy[0], { 'Last-Event-ID': lastId });

    // the last accepted event of each user (after the promotion) reaches every client
    for (const [i, user] of busy.entries()) {
      const last = pub.accepted.get(user)!.at(-1)!;
      for (const x of [onA[i], onB[i]]) await x.waitFor((e) => e.data === `${user}#${last}`, { timeout: 15_000 });
    }
    const lastOfVictim = pub.accepted.get(busy[0])!.at(-1)!;
    await back.waitFor((e) => e.data === `${busy[0]}#${lastOfVictim}`, { timeout: 15_000 });

    const report: string[] = [];
    for (const [i, user] of busy.entries()) {
      const accepted = pub.accepted.get(user)!;
      const missing = [onA[i], onB[i]].map((x) => check(x, user, accepted));
      // a broadcast refused before it was sent is never delivered (one that may have been applied may be)
      const neverSent = pub.rejected
        .get(user)!
        .filter((r) => /will not be delivered/.test(r.error))
        .map((r) => r.n);
      for (const x of [onA[i], onB[i]])
        expect(
          segments(x, user)
            .flat()
            .filter((n) => neverSent.includes(n)),
        ).toEqual([]);
      const resets = [onA[i], onB[i]].map((x) => x.named('sse.reset').length);
      const refused = pub.rejected.get(user)!.map((r) => r.n);
      const arrived = refused.filter((n) => segments(onA[i], user).flat().includes(n));
      report.push(
        `${user} (master :${owners[users.indexOf(user)]}${owners[users.indexOf(user)] === victim ? ', killed' : ''}): ` +
          `${accepted.length} accepted, ${refused.length} refused (${arrived.length} of them delivered all the same), ` +
          `missing on A/B ${missing[0].length}/${missing[1].length}, resets ${resets.join('/')}`,
      );
    }
    const resumedFrom = Number(leaving.named('update').at(-1)!.data.split('#')[1]);
    const backMissing = check(back, busy[0], pub.accepted.get(busy[0])!, resumedFrom + 1);
    report.push(`resumed client of ${busy[0]}: missing ${backMissing.length}, resets ${back.named('sse.reset').length}`);
    const refusals = [...pub.rejected.values()].flat().map((r) => `#${r.n} ${r.error}`);
    console.log(
      `Failover of master :${victim} to :${promoted.port} in ${failoverMs} ms while publishing:\n${report.join('\n')}\n` +
        `refused: ${refusals.length}${refusals.length > 0 ? `\n${refusals.join('\n')}` : ''}`,
    );
  }, 90_000);

  /**
   * A master that still has a replica to fail over to, a user (`<tag>-<i>`) whose slot it owns,
   * and one whose slot another master owns.
   */
  async function victimWithUsers(tag: string): Promise<{ victim: number; user: string; other: string }> {
    const users = Array.from({ length: 45 }, (_, i) => `${tag}-${i}`);
    const owners = await Promise.all(users.map(ownerOf));
    const topology = await cluster.topology();
    const withReplica = new Set(topology.filter((n) => n.role === 'replica' && !n.failing).map((n) => n.masterId));
    const victim = topology.find((n) => n.role === 'master' && withReplica.has(n.id))!.port;
    return { victim, user: users[owners.indexOf(victim)], other: users[owners.findIndex((o) => o !== victim)] };
  }

  it('moves the shard subscriptions with the slot: one event published right after the promotion reaches the clients', async () => {
    const { victim, user } = await victimWithUsers('s');
    const onA = await client(a, user);
    const onB = await client(b, user);
    const hub = c.app.get(SseHub);
    await hub.broadcast({ event: 'update', data: `${user}#0`, filter: { user_id: user } });
    await Promise.all([onA, onB].map((x) => x.waitFor('update')));
    // publish one event at a time until one is accepted after the master died: the new master took
    // it, maybe before the followers' subscriptions moved; nothing is published after it
    let killed = false;
    const failover = cluster.killMaster(victim, { afterKill: () => void (killed = true) });
    let last = 0;
    for (let n = 1; ; n++) {
      const afterKill = killed;
      try {
        await hub.broadcast({ event: 'update', data: `${user}#${n}`, filter: { user_id: user } });
        last = n;
        if (afterKill) break;
      } catch {
        // refused while the slot had no master: not accepted
      }
    }
    const promoted = await failover;
    for (const x of [onA, onB]) {
      await x.waitFor((e) => e.data === `${user}#${last}`, { timeout: 10_000 });
      // nothing was lost (the replica had everything): no reset, each event once, in order
      const [only, ...more] = segments(x, user);
      expect(more).toEqual([]);
      expect(only).toEqual([...new Set(only)].sort((p, q) => p - q));
    }
    // both apps' followers are subscribed on the promoted master
    const direct = new Redis(promoted.port, '127.0.0.1');
    try {
      const [, subscribers] = (await direct.call('PUBSUB', 'SHARDNUMSUB', `{${PREFIX}/${user}}:live`)) as [string, number];
      expect(subscribers).toBe(2);
    } finally {
      direct.disconnect();
    }
  }, 60_000);

  it('tells the clients of a user with sse.reset when the failover lost events they were owed, live or resuming', async () => {
    const { victim, user, other } = await victimWithUsers('l');
    const replica = await cluster.replicaOf(victim);
    const onA = await client(a, user);
    const onB = await client(b, user);
    const otherOnA = await client(a, other);
    const leaving = await client(a, user);
    const hub = c.app.get(SseHub);
    const publish = (who: string, n: number) => hub.broadcast({ event: 'update', data: `${who}#${n}`, filter: { user_id: who } });
    for (let n = 0; n < 5; n++) await publish(user, n);
    await leaving.waitForCount(5, 'update');
    leaving.close();
    const lastId = leaving.named('update').at(-1)!.id;
    for (let n = 5; n < 10; n++) await publish(user, n);
    await Promise.all([onA, onB].map((x) => x.waitForCount(10, 'update')));

    // the replica stops taking the master's writes: what the master accepts now exists nowhere else
    replica.signal('SIGSTOP');
    expect(await rawCommand(victim, 'CLIENT KILL TYPE replica')).toBe(':1');
    for (let n = 10; n < 15; n++) await publish(user, n);
    await Promise.all([onA, onB].map((x) => x.waitForCount(15, 'update')));
    await cluster.killMaster(victim, { afterKill: () => replica.signal('SIGCONT') });
    for (let n = 15; n < 20; n++) await publish(user, n);
    await publish(other, 0);

    const until19 = Array.from({ length: 15 }, (_, n) => n);
    for (const x of [onA, onB]) {
      await x.waitFor((e) => e.data === `${user}#19`, { timeout: 10_000 });
      // the followers delivered 10..14 live, then found them gone from the new master: their
      // clients got everything, and are told that the history behind it was lost
      expect(segments(x, user)).toEqual([until19, [15, 16, 17, 18, 19]]);
      expect(x.named('sse.reset').map((e) => e.data)).toEqual(['{"reason":"lost"}']);
    }
    // a client that left before the loss comes back: its events 5..9 are there, 10..14 are not
    const back = await client(b, user, { 'Last-Event-ID': lastId });
    await back.waitFor('sse.reset', { timeout: 10_000 });
    expect(back.events.map((e) => `${e.event} ${e.data}`)).toEqual(['sse.reset {"reason":"lost"}']);
    // one whose last event was lost with the master
    const lostId = onA.named('update').find((e) => e.data === `${user}#14`)!.id;
    const fromLost = await client(a, user, { 'Last-Event-ID': lostId });
    await fromLost.waitFor('sse.reset', { timeout: 10_000 });
    // one whose last event came after the failover resumes without a reset
    const afterId = onA.named('update').find((e) => e.data === `${user}#17`)!.id;
    const fromAfter = await client(b, user, { 'Last-Event-ID': afterId });
    await fromAfter.waitForCount(2, 'update', { timeout: 10_000 });
    expect(segments(fromAfter, user)).toEqual([[18, 19]]);
    // the user on another master saw nothing of it
    await otherOnA.waitFor((e) => e.data === `${other}#0`);
    expect(otherOnA.named('sse.reset')).toEqual([]);
    const metrics = await Promise.all([a, b].map((t) => (t.app.get(SseTransport) as RedisTransport).metrics()));
    expect(metrics.map((m) => m.routed_lost)).toEqual([1, 1]);
  }, 60_000);
});
