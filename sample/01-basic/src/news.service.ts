import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';

const HEADLINES = ['Markets open higher', 'Local team wins', 'New library released', 'Rain expected tomorrow'];

/** Broadcasts a headline to the news channel and the time to /events, on a timer. */
@Injectable()
export class NewsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NewsService');
  private timer: NodeJS.Timeout | undefined;
  private count = 0;

  constructor(private readonly hub: SseHub) {}

  onApplicationBootstrap(): void {
    const interval = Number(process.env.NEWS_INTERVAL_MS ?? 5000);
    if (interval > 0) this.timer = setInterval(() => void this.tick(), interval);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One headline for the news channel. */
  flash(headline = 'Breaking news!'): Promise<number> {
    return this.hub.broadcast({ event: 'update', data: headline, filter: { channel: 'news' } });
  }

  // A timer's broadcast can fail (Redis unreachable past publishTimeout, or refusing writes):
  // nobody awaits it, so it is caught here, logged, and the next tick tries again.
  private async tick(): Promise<void> {
    const headline = HEADLINES[this.count++ % HEADLINES.length];
    try {
      await this.flash(headline);
      await this.hub.broadcast({ event: 'tick', data: { time: new Date().toISOString() }, endpoint: '/events' });
    } catch (err) {
      this.logger.warn(`News broadcast skipped: ${(err as Error).message}`);
    }
  }
}
