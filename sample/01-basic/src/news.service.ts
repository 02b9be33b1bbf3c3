import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';
import { demoUsers } from './demo-users.js';

const HEADLINES = ['Markets open higher', 'Local team wins', 'New library released', 'Rain expected tomorrow'];

/**
 * On a timer: a headline to the news channel, the time to /events, and a private notification
 * to each demo user in turn on /notifications.
 */
@Injectable()
export class NewsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private readonly users = demoUsers().map((u) => u.name);

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

  /** A private notification: only `user`'s streams of /notifications get it. */
  notify(user: string, text: string): Promise<number> {
    return this.hub.broadcast({ event: 'notification', data: { text }, endpoint: '/notifications', filter: { user_id: user } });
  }

  private async tick(): Promise<void> {
    const n = this.count++;
    await this.flash(HEADLINES[n % HEADLINES.length]);
    await this.hub.broadcast({ event: 'tick', data: { time: new Date().toISOString() }, endpoint: '/events' });
    const user = this.users[n % this.users.length];
    await this.notify(user, `Reminder ${Math.floor(n / this.users.length) + 1} for ${user}`);
  }
}
