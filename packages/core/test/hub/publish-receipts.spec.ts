import { describe, it, expect, afterEach, jest } from '@jest/globals';
import { PublishReceipts, ECHO_TIMEOUT } from '../../src/hub/publish-receipts.js';
import { SseNode } from '../../src/hub/sse-node.js';
import type { SseEnvelope, SseEnvelopeDraft, SseTransport } from '../../src/interfaces/sse-transport.interface.js';

/** A transport whose publish does what the test says: deliver at once (memory), later, or fail. */
function transport(publish: (draft: SseEnvelopeDraft) => Promise<string>): SseTransport {
  return { backend: 'test', publish } as unknown as SseTransport;
}

const draft = (node: SseNode, receipts: PublishReceipts): SseEnvelopeDraft => ({
  data: 'x',
  origin: node.id,
  seq: receipts.nextSeq(),
  time: Date.now(),
});

const envelopeOf = (d: SseEnvelopeDraft): SseEnvelope => ({ ...d, id: `id-${d.seq}` });

describe('PublishReceipts', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('resolves with the streams reached when the transport delivers inside publish (memory)', async () => {
    const node = new SseNode();
    const receipts: PublishReceipts = new PublishReceipts(
      node,
      transport(async (d) => {
        receipts.settle(envelopeOf(d), 3);
        return 'id';
      }),
    );
    await expect(receipts.publish(draft(node, receipts))).resolves.toBe(3);
    expect(receipts.size).toBe(0);
    expect(node.counters.published).toBe(1);
  });

  it('waits for the echo of a distributed transport, and ignores other nodes and other drafts', async () => {
    const node = new SseNode();
    const receipts = new PublishReceipts(
      node,
      transport(async () => 'id'),
    );
    const d = draft(node, receipts);
    const reached = receipts.publish(d);
    await Promise.resolve();
    receipts.settle({ ...envelopeOf(d), origin: 'another node' }, 9);
    receipts.settle({ ...envelopeOf(d), seq: d.seq + 1 }, 8);
    expect(receipts.size).toBe(1);
    receipts.settle(envelopeOf(d), 2);
    await expect(reached).resolves.toBe(2);
    expect(receipts.size).toBe(0);
  });

  it('resolves 0 when the echo does not come within the echo timeout', async () => {
    jest.useFakeTimers();
    const node = new SseNode();
    const receipts = new PublishReceipts(
      node,
      transport(async () => 'id'),
    );
    const reached = receipts.publish(draft(node, receipts));
    await jest.advanceTimersByTimeAsync(ECHO_TIMEOUT - 1);
    expect(receipts.size).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    await expect(reached).resolves.toBe(0);
    expect(receipts.size).toBe(0);
  });

  it('rejects with the transport error when the publish fails, and forgets the receipt', async () => {
    const node = new SseNode();
    const receipts = new PublishReceipts(
      node,
      transport(async () => {
        throw new Error('down');
      }),
    );
    await expect(receipts.publish(draft(node, receipts))).rejects.toThrow('down');
    expect(receipts.size).toBe(0);
  });

  it('resolves every waiting publisher with 0 when the hub closes', async () => {
    const node = new SseNode();
    const receipts = new PublishReceipts(
      node,
      transport(async () => 'id'),
    );
    const both = Promise.all([receipts.publish(draft(node, receipts)), receipts.publish(draft(node, receipts))]);
    await Promise.resolve();
    receipts.cancelAll();
    await expect(both).resolves.toEqual([0, 0]);
    expect(receipts.size).toBe(0);
  });
});
