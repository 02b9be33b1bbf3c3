import { createHash } from 'node:crypto';

/** What the transport needs of an ioredis client (a `Redis` or a `Cluster`) to run a script. */
export interface ScriptClient {
  script(subcommand: 'LOAD', source: string): Promise<unknown>;
  /** On a `Cluster`: its nodes (the script cache is per server and is not replicated). */
  nodes?(role: 'master'): Array<{ script(subcommand: 'LOAD', source: string): Promise<unknown> }>;
  isCluster?: boolean;
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/**
 * A Lua script run by its SHA1, sent in full only when the server does not know it yet (after a
 * restart, for instance). Plain EVALSHA/EVAL, so a client the app passed in is not changed the way
 * `defineCommand` would change it.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /**
   * Loads the script where its keys live: the server, or on a Cluster every master (a keyless
   * SCRIPT LOAD would go to a random one, and each server has its own script cache).
   */
  async load(client: ScriptClient): Promise<void> {
    if (client.isCluster && client.nodes) {
      await Promise.all(client.nodes('master').map((node) => node.script('LOAD', this.source)));
    } else {
      await client.script('LOAD', this.source);
    }
  }

  /**
   * Runs the script. Without `fallback`, a server that does not know it rejects with NOSCRIPT and
   * the caller decides: a fallback EVAL would overtake nothing it must not, but only the caller
   * knows whether order matters.
   */
  async run(client: ScriptClient, keys: string[], args: Array<string | number>, fallback = true): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!fallback || !isNoScript(err)) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

export function isNoScript(err: unknown): boolean {
  return String((err as Error)?.message).startsWith('NOSCRIPT');
}

/** Lua helpers shared by the scripts: the server's clock in ms, and Stream id order. */
const COMMON = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function id_cmp(a, b)
  local da, db = string.find(a, '-', 1, true), string.find(b, '-', 1, true)
  local ma, mb = string.sub(a, 1, da - 1), string.sub(b, 1, db - 1)
  if #ma ~= #mb then return #ma < #mb and -1 or 1 end
  if ma ~= mb then return ma < mb and -1 or 1 end
  local sa, sb = string.sub(a, da + 1), string.sub(b, db + 1)
  if #sa ~= #sb then return #sa < #sb and -1 or 1 end
  if sa ~= sb then return sa < sb and -1 or 1 end
  return 0
end
local function stream_info(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  local info = redis.call('XINFO', 'STREAM', key)
  local out = {}
  for i = 1, #info, 2 do out[info[i]] = info[i + 1] end
  return out
end
-- a field of an entry (nil when it has none)
local function field_of(entry, name)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
-- the id an entry says came before it ('' when it does not say)
local function previous_of(entry)
  return field_of(entry, 'p') or ''
end
-- a routed value's Stream, or when it expired (its history is over), what its last-id key kept:
-- an empty Stream that generated that id (no key given: the Stream alone)
local function routed_info(key, last_key)
  local info = stream_info(key)
  if info or not last_key then return info end
  local last = redis.call('GET', last_key)
  if not last then return nil end
  return {['last-generated-id'] = last}
end
-- whether every entry after id is still in the Stream: trimming only ever removes the oldest
-- entries, and each entry names the one before it, so the first entry tells
local function intact_after(info, id)
  local last = info['last-generated-id']
  if id == '0-0' then
    -- before any entry: intact while the first entry ever added is still there
    local first = info['first-entry']
    if not first then return last == '0-0' end
    return previous_of(first) == ''
  end
  if id_cmp(id, last) >= 0 then return true end
  local first = info['first-entry']
  if not first then return false end
  if id_cmp(id, first[1]) >= 0 then return true end
  return previous_of(first) == id
end
-- whether an entry this Stream once gave is gone from it without being trimmed: the Stream is
-- behind it (a replica promoted before it received it, a Redis restarted without it) or it is
-- missing between the first entry and the last
local function gone(key, info, id)
  if not info then return true end
  local last = info['last-generated-id']
  if id == last then return false end
  if id_cmp(id, last) > 0 then return true end
  local first = info['first-entry']
  if not first or id_cmp(id, first[1]) < 0 then return false end
  return #redis.call('XRANGE', key, id, id) == 0
end
-- Appends a loss marker to a routed value's Stream (fields p, f: the last entry kept before the
-- lost ones, '' when unknown, and l: the last entry known lost), sends it on the shard channel
-- as '<id> <previous>', a newline, then 'lost <l> <f>', and returns its id. The same loss is
-- marked once: when a marker of it is among the first entries after f (where the first to notice
-- puts it, most often before any other entry), nothing is added and the last id is returned, so
-- that clients resuming from an entry after it are not told of a loss they were told of already
local function mark_lost(key, live, maxlen, info, fork, through)
  local previous = info and info['last-generated-id'] or ''
  if info then
    local after = redis.call('XRANGE', key, fork == '' and '-' or '(' .. fork, '+', 'COUNT', 100)
    for i = 1, #after do
      if field_of(after[i], 'l') and field_of(after[i], 'f') == fork then return previous end
    end
  end
  local id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'p', previous, 'f', fork, 'l', through)
  if live ~= '' then redis.call('SPUBLISH', live, id .. ' ' .. previous .. '\\nlost ' .. through .. ' ' .. fork) end
  return id
end
-- the entry before id in the Stream ('' when none is left)
local function entry_before(key, id)
  local before = redis.call('XREVRANGE', key, '(' .. id, '-', 'COUNT', 1)
  return before[1] and before[1][1] or ''
end
`;

/**
 * Appends a batch of events, in order, each once, each naming the id generated before it (field
 * `p`, see REPLAY). A publish sent again after a dropped connection (it may have been applied
 * before the reply was lost) finds its seq among this node's recent publishes and gets the id it
 * was given the first time instead of a second entry.
 *
 * The batch is applied only if the broadcast its node sent just before it (ARGV[5], 0 for none
 * still unconfirmed) was: otherwise it answers ORDER, and the node sends everything again in order.
 * It is never applied after a later broadcast of its node (seqs only grow): a run that reaches
 * Redis only after its node gave up on it (past publishTimeout, held in a client's queue through
 * a failover) answers STALE instead of appending an event out of order.
 * Within the batch each entry follows the one before it, in one atomic run: the nodes' readers
 * wake once for the whole batch.
 *
 * With a shard channel (ARGV[7]), each new entry is also sent on it with SPUBLISH, as
 * `<id> <id before it>\n<payload>`, so that a subscriber that sees a jump in the chain knows it
 * missed some and fills them from the Stream. The channel shares the Stream's hash tag.
 *
 * ARGV[8] is the last id this node was given in this Stream ('' for none): when the Stream no
 * longer has it (a failover lost what the old master had acknowledged), a loss marker goes
 * before the batch (see `mark_lost`), so that the nodes following the value, and clients
 * resuming across the loss, are told rather than left with a silent gap.
 *
 * A routed value's Stream (with a shard channel) expires `max age` after its last entry, so that
 * values nobody publishes to any more do not stay in Redis; its last id is kept a day longer in
 * KEYS[3], and the chain goes on from it when the value is published to again.
 *
 * KEYS: events, this node's recent publishes, then (routed) the value's last-id key, or (not
 *       routed) the publisher id keys the batch uses
 * ARGV: lowest seq still unacknowledged, max length, max age ms, ttl of the recent publishes in
 *       ms, seq of the broadcast sent before, n, shard channel ('' for none), the last id this
 *       node was given ('' for none); then per broadcast: seq, payload, index in KEYS of its
 *       publisher id key (0 for none)
 * Returns the n ids, in order.
 */
export const PUBLISH = new RedisScript(
  `${COMMON}
local before, n, live, mine = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local max_age = tonumber(ARGV[3])
local ids = {}
local previous = nil
for i = 1, n do
  local at = 8 + (i - 1) * 3
  local seq = tonumber(ARGV[at + 1])
  local done = redis.call('ZRANGEBYSCORE', KEYS[2], seq, seq)
  if done[1] then
    ids[i] = done[1]
  else
    if i == 1 and before ~= '0' and not redis.call('ZRANGEBYSCORE', KEYS[2], before, before)[1] then
      return redis.error_reply('ORDER the broadcast sent before this one was not applied')
    end
    if previous == nil then
      local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
      if newest[2] and tonumber(newest[2]) > seq then
        return redis.error_reply('STALE a later broadcast of this node was applied first (this one arrived after its node gave up on it)')
      end
      local info = routed_info(KEYS[1], live ~= '' and KEYS[3] or nil)
      previous = info and info['last-generated-id'] or ''
      if mine ~= '' and gone(KEYS[1], info, mine) then
        previous = mark_lost(KEYS[1], live, ARGV[2], info, info and entry_before(KEYS[1], mine) or '', mine)
      end
    end
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'p', previous, 'e', ARGV[at + 2])
    if live ~= '' then redis.call('SPUBLISH', live, id .. ' ' .. previous .. '\\n' .. ARGV[at + 2]) end
    previous = id
    redis.call('ZADD', KEYS[2], seq, id)
    local key = tonumber(ARGV[at + 3])
    if key > 0 then redis.call('SET', KEYS[key], id, 'PX', ARGV[3]) end
    ids[i] = id
  end
end
if previous ~= nil and max_age > 0 then
  local oldest = now_ms() - max_age
  if oldest > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', oldest)) end
end
if previous ~= nil and live ~= '' then
  -- a routed value's Stream goes when its history is over; its last id stays a day, for cursors
  if max_age > 0 then redis.call('PEXPIRE', KEYS[1], math.max(max_age, 1000)) end
  redis.call('SET', KEYS[3], previous, 'PX', 86400000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return ids
`,
);

/**
 * Events after an id, or why there are none to give. Expired history is trimmed first (exactly),
 * then the first entry left (and the id it says came before it) tells whether anything after the
 * client's id is gone: `expired` when trimmed; `lost` when the entry after the client's id names
 * another one before it (the client's id, or entries after it, are gone without being trimmed:
 * a failover lost what the old master had acknowledged).
 *
 * KEYS: events, the publisher id key the id would be (a publisher id wins over a Stream id), and
 *       for a routed value its last-id key (an expired Stream resumes from the id it kept)
 * ARGV: the id as a Stream id ('' if it is not one), count, max age ms
 * Returns {'reset', reason} or {'ok', after, entries}
 */
export const REPLAY = new RedisScript(
  `${COMMON}
local after = redis.call('GET', KEYS[2])
if not after then
  if ARGV[1] == '' then return {'reset', 'unknown'} end
  after = ARGV[1]
end
local max_age = tonumber(ARGV[3])
if max_age > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local oldest = now_ms() - max_age
  if oldest > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', oldest)) end
end
local info = routed_info(KEYS[1], KEYS[3])
if not info then
  -- '0-0' is the position of a Stream that had no entry yet (a routed value's cursor)
  if after == '0-0' then return {'ok', after, {}} end
  return {'reset', 'unknown'}
end
if id_cmp(after, info['last-generated-id']) > 0 then return {'reset', 'unknown'} end
if not intact_after(info, after) then return {'reset', 'expired'} end
local entries = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', ARGV[2])
if after ~= '0-0' and entries[1] then
  local previous = field_of(entries[1], 'p')
  if previous and previous ~= after then return {'reset', 'lost'} end
end
return {'ok', after, entries}
`,
);

/**
 * A follower's report that entries it delivered are gone from a routed value's Stream (it found
 * the chain going on from an older entry): adds a loss marker (see `mark_lost`) unless the entry
 * is there after all. KEYS: events, shard channel, the value's last-id key. ARGV: the last entry kept before the lost ones
 * ('' when the Stream restarted), the last entry known lost, max length, max age ms.
 * Returns the marker's id, or 0 when the entry is there.
 */
export const MARK_LOST = new RedisScript(
  `${COMMON}
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) > 0 then return 0 end
local id = mark_lost(KEYS[1], KEYS[2], ARGV[3], routed_info(KEYS[1], KEYS[3]), ARGV[1], ARGV[2])
-- the marker is the value's last entry now: it expires with the history, its id is kept (see PUBLISH)
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), 1000)) end
redis.call('SET', KEYS[3], id, 'PX', 86400000)
return id
`,
);

/**
 * The Stream's last generated id, '' when there is no Stream. KEYS: events, and for a routed value
 * its last-id key (an expired Stream's last id).
 */
export const POSITION = new RedisScript(
  `${COMMON}
local info = routed_info(KEYS[1], KEYS[2])
return info and info['last-generated-id'] or ''
`,
);

/**
 * Writes this node's counts under a lease (or, with an empty JSON, removes them), and forgets
 * nodes whose lease ran out. Leases use the server's clock, so nodes' clocks need not agree.
 *
 * KEYS: nodes, stats. ARGV: node id, JSON ('' to leave), lease ms, ttl of both keys ms
 */
export const WRITE_STATS = new RedisScript(
  `${COMMON}
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
for i = 1, #dead do redis.call('HDEL', KEYS[2], dead[i]) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now)) end
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return #dead
`,
);

/** The counts of every node whose lease has not run out: {node, json, node, json, ...}. KEYS: nodes, stats. */
export const READ_STATS = new RedisScript(
  `${COMMON}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now_ms()), '+inf')
local out = {}
if #ids == 0 then return out end
local values = redis.call('HMGET', KEYS[2], unpack(ids))
for i = 1, #ids do
  out[#out + 1] = ids[i]
  out[#out + 1] = values[i] or ''
end
return out
`,
);
