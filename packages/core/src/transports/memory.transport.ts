import { SseOptionRules, validateOptions } from '../validation/options-schema.js';
import { DEFAULT_HISTORY_MAX_AGE, DEFAULT_HISTORY_SIZE } from '../sse.constants.js';
import type {
  SseClusterStats,
  SseEnvelope,
  SseEnvelopeDraft,
  SseReplayResult,
  SseTransport,
  SseTransportContext,
} from '../interfaces/sse-transport.interface.js';

/** Options of `MemoryTransport`. */
export interface MemoryTransportOptions {
  /** Events kept for `Last-Event-ID` replay: an integer of at least 0 (0 keeps none). @default 1000 */
  historySize?: number;
  /** How long an event stays replayable: an integer of at least 1, in ms. @default 300000 (5 minutes) */
  historyMaxAge?: number;
}

const MEMORY_OPTIONS = SseOptionRules.object({
  historySize: SseOptionRules.integer({ min: 0, max: 10_000_000, unit: 'events' }),
  historyMaxAge: SseOptionRules.integer({ min: 1, unit: 'ms' }),
});

/**
 * The in-process backend: delivery is a function call, ids are `<epoch>-<counter>` (the epoch
 * is the start time in base 36, so an id from before a restart is recognisably foreign), and
 * history is a ring of the last `historySize` events.
 *
 * @publicApi
 */
export class MemoryTransport implements SseTransport {
  readonly backend = 'memory';
  private context: SseTransportContext | undefined;
  private readonly epoch = Date.now().toString(36);
  private readonly size: number;
  private readonly maxAge: number;
  private readonly ring: Array<SseEnvelope | undefined>;
  private seq = 0;
  private oldest = 1;
  private readonly byEventId = new Map<string, number>();

  constructor(options: MemoryTransportOptions = {}) {
    validateOptions('MemoryTransport options', options, MEMORY_OPTIONS);
    this.size = options.historySize ?? DEFAULT_HISTORY_SIZE;
    this.maxAge = options.historyMaxAge ?? DEFAULT_HISTORY_MAX_AGE;
    this.ring = new Array(this.size);
  }

  async start(context: SseTransportContext): Promise<void> {
    this.context = context;
  }

  publish(draft: SseEnvelopeDraft): Promise<string> {
    const context = this.context;
    if (context === undefined) return Promise.reject(new Error('MemoryTransport is not started: publish after the application has bootstrapped'));
    const seq = ++this.seq;
    const envelope = draft as SseEnvelope;
    envelope.id = `${this.epoch}-${seq}`;
    if (this.size > 0 && envelope.target === undefined) this.remember(seq, envelope);
    context.deliver(envelope);
    return Promise.resolve(envelope.id);
  }

  async replay(afterId: string, limit: number): Promise<SseReplayResult> {
    this.expire(Date.now());
    let after = this.parse(afterId);
    if (after === undefined) after = this.byEventId.get(afterId);
    if (after === undefined || after > this.seq) return { status: 'reset', reason: 'unknown' };
    if (after === this.seq) return { status: 'ok', events: [] };
    if (this.size === 0) return { status: 'reset', reason: 'expired' };
    if (after < this.oldest - 1) return { status: 'reset', reason: 'expired' };
    if (this.seq - after > limit) return { status: 'reset', reason: 'expired' };
    const events: SseEnvelope[] = [];
    for (let seq = after + 1; seq <= this.seq; seq++) {
      const envelope = this.ring[seq % this.size];
      if (envelope !== undefined && envelope.id === `${this.epoch}-${seq}`) events.push(envelope);
    }
    return { status: 'ok', events };
  }

  async clusterStats(): Promise<SseClusterStats> {
    return { backend: this.backend, nodes: this.context ? [this.context.localStats()] : [] };
  }

  async close(): Promise<void> {
    this.ring.fill(undefined);
    this.byEventId.clear();
    this.context = undefined;
  }

  private remember(seq: number, envelope: SseEnvelope): void {
    const slot = seq % this.size;
    const evicted = this.ring[slot];
    if (evicted?.eventId !== undefined && this.byEventId.get(evicted.eventId) === seq - this.size) {
      this.byEventId.delete(evicted.eventId);
    }
    this.ring[slot] = envelope;
    if (envelope.eventId !== undefined) this.byEventId.set(envelope.eventId, seq);
    if (seq - this.oldest >= this.size) this.oldest = seq - this.size + 1;
    this.expire(envelope.time);
  }

  /** Forgets events older than `maxAge`; cheap: it only looks at the oldest ones. */
  private expire(now: number): void {
    if (this.size === 0) return;
    const limit = now - this.maxAge;
    while (this.oldest <= this.seq) {
      const envelope = this.ring[this.oldest % this.size];
      if (envelope === undefined) {
        // a targeted send took this number without being kept
        this.oldest++;
        continue;
      }
      if (envelope.time >= limit) break;
      this.ring[this.oldest % this.size] = undefined;
      if (envelope.eventId !== undefined && this.byEventId.get(envelope.eventId) === this.oldest) this.byEventId.delete(envelope.eventId);
      this.oldest++;
    }
  }

  private parse(id: string): number | undefined {
    const dash = id.lastIndexOf('-');
    if (dash <= 0 || id.slice(0, dash) !== this.epoch) return undefined;
    const seq = Number(id.slice(dash + 1));
    return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  }
}
