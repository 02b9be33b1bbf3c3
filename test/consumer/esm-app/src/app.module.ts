import { type DynamicModule, Module } from '@nestjs/common';
import { SseModule, type SseTransport } from '@nest-sse/core';
import { NewsController } from './news.controller.js';

@Module({ controllers: [NewsController] })
export class AppModule {
  /** The app on `transport` (in-memory without one). */
  static register(transport?: SseTransport): DynamicModule {
    return { module: AppModule, imports: [SseModule.forRoot(transport)] };
  }
}
