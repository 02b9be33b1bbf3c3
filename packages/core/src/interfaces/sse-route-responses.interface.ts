/**
 * Answer of the broadcast route. The counts differ in scope: `endpoint_clients` is cluster-wide,
 * `reached_on_this_node` is this node's share (other nodes deliver on their own and do not report
 * back). With one node (the memory transport) both are about the same streams.
 */
export interface SseBroadcastResponse {
  success: true;
  /** The endpoint broadcast to (the `@SseEndpoint` path). */
  endpoint: string;
  /** Open streams of this endpoint on every node, read just after the broadcast. */
  endpoint_clients: number;
  /** Streams of this node (`node`) the event was written to. */
  reached_on_this_node: number;
  /** The node that answered. */
  node: string;
  /** The same as `endpoint_clients` (the older name). */
  clients: number;
  /** The same as `reached_on_this_node` (the older name). */
  clients_reached: number;
}

/** What the stats route answers. */
export interface SseEndpointStatsResponse {
  connected_clients: number;
  timestamp: string;
  backend: string;
  endpoint: string;
  endpoint_clients: number;
  endpoints: Record<string, number>;
  nodes: Array<{ node: string; connected_clients: number; endpoints: Record<string, number> }>;
}
