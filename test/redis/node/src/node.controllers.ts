import { Body, Controller, Get, Inject, Post } from '@nestjs/common';
import { OnSseConnect, SseEndpoint, SseHub, SseStream, SseTransport, type SseFilter } from '@nest-sse/core';

/** Test routes are on loopback only, so the generated routes are public here. */
const ACCESS = { access: { stats: 'public', broadcast: 'public' } } as const;

@SseEndpoint('/events', { ...ACCESS, heartbeatInterval: 5 })
export class EventsController {}

/** `GET /channels?channel=news`: the welcome names the channel. */
@SseEndpoint('/channels', { ...ACCESS, heartbeatInterval: 5, metadata: { allowedKeys: ['channel', 'tag'] } })
export class ChannelsController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    stream.send({ event: 'connection', data: `Connected to channel: ${stream.metadata.channel ?? 'none'}` });
  }
}

/** The connect hook gives the stream its channel, as an app that reads it from a session would. */
@SseEndpoint('/assigned', { ...ACCESS, heartbeatInterval: 5, metadata: { allowedKeys: ['tag'] } })
export class AssignedController implements OnSseConnect {
  onSseConnect(stream: SseStream): void {
    stream.setMetadata('channel', `assigned-${String(stream.metadata.tag)}`);
    stream.send({ event: 'connection', data: 'assigned' });
  }
}

/** Limits counted across the cluster: 3 streams in all, 2 per user_id. */
@SseEndpoint('/limited', { ...ACCESS, heartbeatInterval: 5, maxConnections: 3, maxConnectionsPerKey: { key: 'user_id', max: 2 } })
export class LimitedController {}

/** Closes the app from a route, to check that closing leaves nothing open. */
export const APP_CLOSER = 'APP_CLOSER';
export interface AppCloser {
  close(): void;
}

interface BroadcastBody {
  event?: string;
  data: unknown;
  id?: string;
  endpoint?: string;
  filter?: SseFilter;
}

interface BurstBody {
  count: number;
  tag: string;
  event?: string;
  endpoint?: string;
  filter?: SseFilter;
  /** 0: all at once; otherwise one every intervalMs, without waiting for the previous one. */
  intervalMs?: number;
}

interface PumpBody {
  tag: string;
  /** Broadcasts published together in one turn (one publish script run, most often). */
  batch: number;
  intervalMs: number;
  endpoint?: string;
}

/** What the multi-node tests drive: broadcasts from SseHub, targeted sends, and state. */
@Controller('ctl')
export class ControlController {
  private pump: { stopped: boolean; running: Promise<void>; calls: Array<Promise<number>> } | undefined;

  constructor(
    private readonly hub: SseHub,
    @Inject(APP_CLOSER) private readonly closer: AppCloser,
    @Inject(SseTransport) private readonly sseTransport: SseTransport,
  ) {}

  @Post('broadcast')
  async broadcast(@Body() body: BroadcastBody) {
    const reached = await this.hub.broadcast({
      event: body.event,
      data: body.data,
      id: body.id,
      endpoint: body.endpoint,
      filter: body.filter,
    });
    return { reached };
  }

  @Post('burst')
  async burst(@Body() body: BurstBody) {
    const calls: Array<Promise<number>> = [];
    for (let i = 0; i < body.count; i++) {
      if (body.intervalMs && i > 0) await new Promise((resolve) => setTimeout(resolve, body.intervalMs));
      const call = this.hub.broadcast({
        event: body.event,
        data: `${body.tag}:${i}`,
        endpoint: body.endpoint,
        filter: body.filter,
      });
      call.catch(() => undefined);
      calls.push(call);
    }
    const settled = await Promise.allSettled(calls);
    const resolved: number[] = [];
    const rejected: number[] = [];
    const errors = new Set<string>();
    settled.forEach((result, i) => {
      if (result.status === 'fulfilled') resolved.push(i);
      else {
        rejected.push(i);
        errors.add(String((result.reason as Error)?.message));
      }
    });
    return { resolved, rejected, errors: [...errors].slice(0, 5) };
  }

  /**
   * Publishes `tag:0`, `tag:1`, ... in batches of `batch` (one turn each), `intervalMs` after the
   * batch before has settled, until `pump/stop`. Paced by the batches it publishes rather than by
   * the clock: on a busy machine it publishes less instead of piling up broadcasts it cannot take.
   */
  @Post('pump')
  startPump(@Body() body: PumpBody) {
    if (this.pump !== undefined) return { started: false };
    const calls: Array<Promise<number>> = [];
    const pump = { stopped: false, running: Promise.resolve(), calls };
    pump.running = (async () => {
      while (!pump.stopped) {
        const batch: Array<Promise<number>> = [];
        for (let i = 0; i < body.batch; i++) {
          batch.push(this.hub.broadcast({ data: `${body.tag}:${calls.length + i}`, endpoint: body.endpoint }));
        }
        calls.push(...batch);
        await Promise.allSettled(batch);
        await new Promise((resolve) => setTimeout(resolve, body.intervalMs));
      }
    })();
    this.pump = pump;
    return { started: true };
  }

  /** Stops the pump; answers how many it published and which of them failed, once all settled. */
  @Post('pump/stop')
  async stopPump() {
    const pump = this.pump;
    if (pump === undefined) return { published: 0, rejected: [] };
    this.pump = undefined;
    pump.stopped = true;
    await pump.running;
    const settled = await Promise.allSettled(pump.calls);
    return { published: settled.length, rejected: settled.flatMap((result, i) => (result.status === 'rejected' ? [i] : [])) };
  }

  @Post('send')
  async send(@Body() body: { connection: string; event?: string; data: unknown }) {
    return { sent: await this.hub.send(body.connection, { event: body.event, data: body.data }) };
  }

  /**
   * Moves a stream to another channel, as an app route that changes what a signed-in user
   * follows would; with `applied`, answers once broadcasts to the new channel reach the stream.
   */
  @Post('move')
  async move(@Body() body: { tag: string; channel: string; applied?: boolean }) {
    const stream = [...this.hub.streams()].find((s) => s.metadata.tag === body.tag);
    if (stream === undefined) return { moved: false };
    stream.setMetadata('channel', body.channel);
    if (body.applied) await stream.metadataApplied();
    return { moved: true };
  }

  @Get('streams')
  streams() {
    return [...this.hub.streams()].map((s) => ({ id: s.id, endpoint: s.endpoint, metadata: s.metadata }));
  }

  @Get('counters')
  counters() {
    return { node: this.hub.nodeId, ...this.hub.counters };
  }

  /** What the transport reports about itself (connection state, broadcasts waiting), for tests to wait on. */
  @Get('transport')
  async transport() {
    return (this.sseTransport as unknown as { metrics(): Record<string, number> }).metrics();
  }

  @Post('close')
  close() {
    setTimeout(() => this.closer.close(), 50);
    return { closing: true };
  }
}
