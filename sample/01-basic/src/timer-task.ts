import { Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';

/**
 * Runs `tick` on the news timer (NEWS_INTERVAL_MS, default 5 s; 0 turns it off) while the app
 * runs. Nobody awaits a timer's broadcast, and one can fail (Redis unreachable past
 * publishTimeout, or refusing writes): the failure is logged as `<what> skipped: <why>`, and the
 * next tick tries again.
 */
export abstract class TimerTask implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;

  protected constructor(
    name: string,
    private readonly what: string,
  ) {
    this.logger = new Logger(name);
  }

  /** One run of the task; `n` counts from 0. */
  protected abstract tick(n: number): Promise<unknown>;

  onApplicationBootstrap(): void {
    const interval = Number(process.env.NEWS_INTERVAL_MS ?? 5000);
    let n = 0;
    if (interval > 0) this.timer = setInterval(() => void this.run(n++), interval);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private async run(n: number): Promise<void> {
    try {
      await this.tick(n);
    } catch (err) {
      this.logger.warn(`${this.what} skipped: ${(err as Error).message}`);
    }
  }
}
