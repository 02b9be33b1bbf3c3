import { Inject, Injectable } from '@nestjs/common';
import type { SseModuleOptions } from '../interfaces/sse-module-options.interface.js';
import { SseTransport, type SseTransportContext } from '../interfaces/sse-transport.interface.js';
import { SseLifecycleError } from '../errors/sse-lifecycle.error.js';
import { DEFAULT_READY_TIMEOUT, SSE_MODULE_OPTIONS } from '../sse.constants.js';
import { hubClosed, hubNotReady, hubStartFailed } from '../sse.messages.js';

/**
 * Where the hub is in its life: starting (the transport connects), ready (broadcasts flow),
 * draining (shutdown began: new streams are sent away), closed (broadcasts are refused).
 */
@Injectable()
export class HubLifecycle {
  /** Resolves when the transport is connected and broadcasts can flow. */
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;
  private started = false;
  private isReady = false;
  /** Why the transport failed to start, once it did. */
  private startError: unknown;
  private closed = false;
  private draining = false;

  constructor(
    @Inject(SSE_MODULE_OPTIONS) private readonly options: SseModuleOptions,
    @Inject(SseTransport) private readonly transport: SseTransport,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
  }

  /** True once shutdown began. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts the transport once; `ready` settles with the outcome. */
  async start(context: SseTransportContext): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      await this.transport.start(context);
      this.isReady = true;
      this.readyResolve();
    } catch (err) {
      this.startError = err;
      this.readyReject(err);
      throw err;
    }
  }

  beginDrain(): void {
    this.draining = true;
  }

  /** Refuses broadcasts from now on (the app is closing). */
  refuse(): void {
    this.draining = true;
    this.closed = true;
  }

  /** Closes the transport, if it was started. */
  async closeTransport(): Promise<void> {
    if (this.started) {
      this.started = false;
      await this.transport.close();
    }
  }

  /**
   * Resolves once broadcasts can flow; rejects with what to do when they cannot: the app is
   * closed, the transport failed to start, or the app did not start within `readyTimeout`.
   */
  async ensureReady(): Promise<void> {
    if (this.closed) throw new SseLifecycleError(hubClosed());
    if (this.isReady) return;
    if (this.startError !== undefined) throw this.startFailed();
    const ms = this.options.readyTimeout ?? DEFAULT_READY_TIMEOUT;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SseLifecycleError(hubNotReady(ms))), ms);
    });
    try {
      await Promise.race([this.ready.catch(() => Promise.reject(this.startFailed())), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) throw new SseLifecycleError(hubClosed());
  }

  private startFailed(): SseLifecycleError {
    const err = this.startError as Error | undefined;
    return new SseLifecycleError(hubStartFailed(err?.message ?? String(err)), { cause: err });
  }
}
