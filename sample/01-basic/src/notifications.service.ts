import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';
import { demoUsers } from './demo-users.js';

/** On the news timer (NEWS_INTERVAL_MS), a private notification to each demo user in turn on /notifications. */
@Injectable()
export class NotificationsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('NotificationsService');
  private readonly users = demoUsers().map((u) => u.name);
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

  /** A private notification: only `user`'s streams of /notifications get it. */
  notify(user: string, text: string): Promise<number> {
    return this.hub.broadcast({ event: 'notification', data: { text }, endpoint: '/notifications', filter: { user_id: user } });
  }

  // nobody awaits a timer's broadcast: a failure (a transport that is down) is logged, and the next tick tries again
  private async tick(): Promise<void> {
    const n = this.count++;
    const user = this.users[n % this.users.length];
    try {
      await this.notify(user, `Reminder ${Math.floor(n / this.users.length) + 1} for ${user}`);
    } catch (err) {
      this.logger.warn(`Notification skipped: ${(err as Error).message}`);
    }
  }
}
