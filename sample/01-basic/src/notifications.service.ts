import { Injectable } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';
import { demoUsers } from './demo-users.js';
import { TimerTask } from './timer-task.js';

/** On the news timer, a private notification to each demo user in turn on /notifications. */
@Injectable()
export class NotificationsService extends TimerTask {
  private readonly users = demoUsers().map((u) => u.name);

  constructor(private readonly hub: SseHub) {
    super('NotificationsService', 'Notification');
  }

  /** A private notification: only `user`'s streams of /notifications get it. */
  notify(user: string, text: string): Promise<number> {
    return this.hub.broadcast({ event: 'notification', data: { text }, endpoint: '/notifications', filter: { user_id: user } });
  }

  protected tick(n: number): Promise<number> {
    const user = this.users[n % this.users.length];
    return this.notify(user, `Reminder ${Math.floor(n / this.users.length) + 1} for ${user}`);
  }
}
