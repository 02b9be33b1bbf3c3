import { Inject, Injectable } from '@nestjs/common';
import { SseTransport, type SseEnvelope, type SseEnvelopeDraft } from '../interfaces/sse-transport.interface.js';
import { SseNode } from './sse-node.js';

/** How long a publisher waits for its own node to deliver an accepted event before giving up counting. */
export const ECHO_TIMEOUT = 10_000;

interface Receipt {
  resolve: (reached: number) => void;
  timer?: NodeJS.Timeout;
}

/**
 * What `broadcast` resolves with: a published draft waits for its echo (the transport hands
 * every event back to its own node too) and resolves with how many of this node's streams got
 * it, or 0 when the echo does not come within `ECHO_TIMEOUT` or the hub closes first.
 */
@Injectable()
export class PublishReceipts {
  private seq = 0;
  private readonly pending = new Map<number, Receipt>();

  constructor(
    private readonly node: SseNode,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {}

  /** The number the next draft of this node carries, to find its receipt when it comes back. */
  nextSeq(): number {
    return ++this.seq;
  }

  /** Publishes a draft and resolves with how many streams of this node got it. */
  publish(draft: SseEnvelopeDraft): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const seq = draft.seq;
      const receipt: Receipt = { resolve };
      this.pending.set(seq, receipt);
      this.node.counters.published++;
      this.transport.publish(draft).then(
        () => {
          // Memory delivers inside publish; a distributed transport delivers when the event comes back.
          if (this.pending.has(seq)) {
            receipt.timer = setTimeout(() => {
              this.pending.delete(seq);
              resolve(0);
            }, ECHO_TIMEOUT);
            receipt.timer.unref();
          }
        },
        (err: unknown) => {
          this.pending.delete(seq);
          reject(err);
        },
      );
    });
  }

  /** An envelope of this node came back after reaching `reached` streams here (or will not come back: 0). */
  settle(envelope: Pick<SseEnvelope, 'origin' | 'seq'>, reached: number): void {
    if (envelope.origin !== this.node.id) return;
    const receipt = this.pending.get(envelope.seq);
    if (receipt === undefined) return;
    this.pending.delete(envelope.seq);
    if (receipt.timer) clearTimeout(receipt.timer);
    receipt.resolve(reached);
  }

  /** Resolves every waiting publisher with 0 (the hub is closing). */
  cancelAll(): void {
    for (const [seq, receipt] of this.pending) {
      if (receipt.timer) clearTimeout(receipt.timer);
      receipt.resolve(0);
      this.pending.delete(seq);
    }
  }

  /** Publishers still waiting for their echo. */
  get size(): number {
    return this.pending.size;
  }
}
