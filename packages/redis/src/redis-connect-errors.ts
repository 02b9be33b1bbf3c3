import type { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError, type RedisConnectFailure } from './errors/redis-unavailable.error.js';

type Client = Redis | Cluster;

/** Why a connection attempt failed, and whether trying again could help. */
interface Diagnosis {
  reason: RedisConnectFailure;
  message: string;
  /** Trying again cannot help (a wrong password stays wrong): fail at once. */
  final: boolean;
}

/**
 * Names the cause of a connection error. `where` is host and port, never a password. A refused
 * connection and a DNS hiccup are worth retrying (Redis may be starting); a host that does not
 * exist, a wrong password and a database index Redis does not have are not.
 */
export function diagnose(err: Error & { code?: string }, where: string): Diagnosis {
  const text = err.message ?? '';
  if (err.code === 'ECONNREFUSED') {
    return {
      reason: 'refused',
      final: false,
      message: `Redis at ${where} refused the connection (ECONNREFUSED): is redis-server running there, on that port?`,
    };
  }
  if (err.code === 'ENOTFOUND') {
    return {
      reason: 'unknown-host',
      final: true,
      message: `The Redis host of ${where} does not exist (DNS: ENOTFOUND). Check the host name in url (or the client's options).`,
    };
  }
  if (/^(WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/i.test(text)) {
    return {
      reason: 'auth',
      final: true,
      message: /^NOAUTH/.test(text)
        ? `Redis at ${where} requires a password and none was given: put it in url (redis://:password@host:port) or redisOptions.password.`
        : `Redis at ${where} refused the password (${text.split('\n')[0]}): check the password (and username) in url or redisOptions.`,
    };
  }
  if (/DB index is out of range/i.test(text)) {
    return {
      reason: 'database',
      final: true,
      message: `Redis at ${where} has no such database (${text}): the index in url (redis://host:port/<db>) or redisOptions.db must be below the server's 'databases' setting (16 by default).`,
    };
  }
  return { reason: 'other', final: false, message: `Redis at ${where}: ${text}` };
}

/**
 * Connects `client` (if it is not yet) and resolves once it is ready. Rejects with a
 * `RedisUnavailableError` naming the cause, its `cause` the underlying error: at once when the
 * cause is final, after `timeout` ms otherwise (naming the last cause seen), and when the
 * client gives up or is closed.
 */
export function connectOrExplain(client: Client, timeout: number, where: string): Promise<void> {
  const selectDb = (client as Cluster).isCluster ? undefined : (client as Redis).options?.db;
  if (client.status === 'ready') return checkDatabase(client, where, selectDb);
  if (client.status === 'wait') client.connect().catch(() => undefined);
  return new Promise<void>((resolve, reject) => {
    let last: { diagnosis: Diagnosis; err: Error } | undefined;
    const done = (err?: RedisUnavailableError): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
      if (err) reject(err);
      else checkDatabase(client, where, selectDb).then(resolve, reject);
    };
    const fail = (reason: RedisConnectFailure, message: string, cause?: Error): RedisUnavailableError =>
      new RedisUnavailableError(message, { cause, reason });
    const onReady = (): void => done();
    const onError = (err: Error): void => {
      const diagnosis = diagnose(err, where);
      last = { diagnosis, err };
      if (diagnosis.final) done(fail(diagnosis.reason, `RedisTransport could not start: ${diagnosis.message}`, err));
    };
    const onEnd = (): void =>
      done(
        last
          ? fail(last.diagnosis.reason, `RedisTransport could not start: ${last.diagnosis.message}`, last.err)
          : fail('closed', `RedisTransport could not start: the connection to ${where} was closed before it was ready.`),
      );
    const timer = setTimeout(
      () =>
        done(
          last
            ? fail(
                last.diagnosis.reason,
                `RedisTransport could not start within ${timeout} ms (connectTimeout): ${last.diagnosis.message}`,
                last.err,
              )
            : fail(
                'timeout',
                `RedisTransport could not reach Redis at ${where} within ${timeout} ms (connectTimeout). ` +
                  `Start redis-server there, or point the transport elsewhere (url, or a client).` +
                  // a TLS client on a plain port sees neither an error nor an answer
                  (where.startsWith('rediss:')
                    ? ' With rediss://, check that the server there speaks TLS (else use redis://).'
                    : ''),
              ),
        ),
      timeout,
    );
    client.once('ready', onReady);
    client.on('error', onError);
    client.once('end', onEnd);
  });
}

/**
 * A failed SELECT does not stop ioredis: the connection becomes ready on database 0. Asking
 * again on the ready connection turns that into an error instead of a silent switch.
 */
async function checkDatabase(client: Client, where: string, db: number | undefined): Promise<void> {
  if (db === undefined || db === 0) return;
  try {
    await (client as Redis).select(db);
  } catch (err) {
    const diagnosis = diagnose(err as Error, where);
    throw new RedisUnavailableError(`RedisTransport could not start: ${diagnosis.message}`, {
      cause: err,
      reason: diagnosis.reason,
    });
  }
}
