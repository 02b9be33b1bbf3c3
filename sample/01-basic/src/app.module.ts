import { DynamicModule, Module } from '@nestjs/common';
import { SseModule, SseModuleOptions, SseTransport } from '@nest-sse/core';
import { BroadcastTokenGuard } from './broadcast-token.guard.js';
import { ChannelsController } from './channels.controller.js';
import { DemoUserGuard } from './demo-user.guard.js';
import { EventsController } from './events.controller.js';
import { NewsService } from './news.service.js';
import { NotificationsController } from './notifications.controller.js';
import { NotificationsService } from './notifications.service.js';
import { PageController } from './page.controller.js';

@Module({
  controllers: [EventsController, ChannelsController, NotificationsController, PageController],
  providers: [NewsService, NotificationsService, BroadcastTokenGuard, DemoUserGuard],
})
export class AppModule {
  /** The app on the given backend (in-memory when omitted). */
  static register(backend?: SseTransport | SseModuleOptions): DynamicModule {
    return { module: AppModule, imports: [SseModule.forRoot(backend)] };
  }
}
