import { ClusterCounts } from './cluster-counts.js';
import { EndpointNames } from './endpoint-names.js';
import { EnvelopeFrames } from './envelope-frames.js';
import { HubLifecycle } from './hub-lifecycle.js';
import { LocalFanout } from './local-fanout.js';
import { LocalStreams } from './local-streams.js';
import { PublishReceipts } from './publish-receipts.js';
import { SseNode } from './sse-node.js';
import { StreamDrain } from './stream-drain.js';
import { StreamReplay } from './stream-replay.js';
import { WriteScheduler } from './write-scheduler.js';

/** The parts `SseHub` is a facade over, provided by `SseModule` (and not exported from it). */
export const HUB_PARTS = [
  SseNode,
  WriteScheduler,
  LocalStreams,
  EnvelopeFrames,
  PublishReceipts,
  LocalFanout,
  StreamReplay,
  ClusterCounts,
  StreamDrain,
  HubLifecycle,
  EndpointNames,
];
