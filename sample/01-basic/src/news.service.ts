import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';

const HEADLINES = ['Markets open higher', 'Local team wins', 'New library released', 'Rain expected tomorrow'];

/** Broadcasts a headline to the news channel and the time to /events, on a timer. */
@Injectable()
export class NewsService implements OnApplicationBootstrap, OnApplicationShutdown {
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

  private async tick(): Promise<void> {
    const headline = HEADLINES[this.count++ % HEADLINES.length];
    await this.flash(headline);
    await this.hub.broadcast({ event: 'tick', data: { time: new Date().toISOString() }, endpoint: '/events' });
  }
}
