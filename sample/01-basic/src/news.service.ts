import { Injectable } from '@nestjs/common';
import { SseHub } from '@nest-sse/core';
import { TimerTask } from './timer-task.js';

const HEADLINES = ['Markets open higher', 'Local team wins', 'New library released', 'Rain expected tomorrow'];

/** Broadcasts a headline to the news channel and the time to /events, on a timer. */
@Injectable()
export class NewsService extends TimerTask {
  constructor(private readonly hub: SseHub) {
    super('NewsService', 'News broadcast');
  }

  /** One headline for the news channel. */
  flash(headline = 'Breaking news!'): Promise<number> {
    return this.hub.broadcast({ event: 'update', data: headline, filter: { channel: 'news' } });
  }

  protected async tick(n: number): Promise<void> {
    await this.flash(HEADLINES[n % HEADLINES.length]);
    await this.hub.broadcast({ event: 'tick', data: { time: new Date().toISOString() }, endpoint: '/events' });
  }
}
