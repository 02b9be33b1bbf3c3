import { DynamicModule, Global, Module, Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type {
  SseModuleAsyncOptions,
  SseModuleOptions,
  SseOptionsFactory,
} from './interfaces/sse-module-options.interface.js';
import { SseTransport } from './interfaces/sse-transport.interface.js';
import { sseOpenApiProvider } from './openapi/sse-openapi.js';
import { SseExplorer } from './sse.explorer.js';
import { SseHub } from './sse.hub.js';
import { SSE_MODULE_OPTIONS } from './sse.constants.js';
import { MemoryTransport } from './transports/memory.transport.js';
import { SseConfigurationError } from './errors/sse-configuration.error.js';

/**
 * Provides `SseHub` to the whole app and serves every `@SseEndpoint` controller.
 *
 * @example
 * @Module({ imports: [SseModule.forRoot()], controllers: [EventsController] })
 * export class AppModule {}
 * @example
 * SseModule.forRoot(new RedisTransport({ url: process.env.REDIS_URL }))
 * @publicApi
 */
@Global()
@Module({})
export class SseModule {
  /**
   * With a transport, options holding one, or nothing (the in-memory transport).
   */
  static forRoot(transportOrOptions: SseTransport | SseModuleOptions = {}): DynamicModule {
    const options = toOptions(transportOrOptions);
    return this.assemble([{ provide: SSE_MODULE_OPTIONS, useValue: options }], []);
  }

  /**
   * Options made by a factory, a class or an existing provider, with injected dependencies.
   *
   * @example
   * SseModule.forRootAsync({
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => new RedisTransport({ url: config.get('REDIS_URL') }),
   * })
   */
  static forRootAsync(options: SseModuleAsyncOptions): DynamicModule {
    const providers: Provider[] = [...(options.extraProviders ?? [])];
    if (options.useFactory) {
      const factory = options.useFactory;
      providers.push({
        provide: SSE_MODULE_OPTIONS,
        useFactory: async (...args: unknown[]) => toOptions(await factory(...args)),
        inject: options.inject ?? [],
      });
    } else if (options.useClass || options.useExisting) {
      const token = (options.useClass ?? options.useExisting)!;
      if (options.useClass) providers.push({ provide: token, useClass: options.useClass });
      providers.push({
        provide: SSE_MODULE_OPTIONS,
        useFactory: async (factory: SseOptionsFactory) => toOptions(await factory.createSseOptions()),
        inject: [token],
      });
    } else {
      throw new SseConfigurationError('SseModule.forRootAsync needs useFactory, useClass or useExisting.');
    }
    return this.assemble(providers, options.imports ?? []);
  }

  private static assemble(providers: Provider[], imports: NonNullable<DynamicModule['imports']>): DynamicModule {
    return {
      module: SseModule,
      global: true,
      imports: [DiscoveryModule, ...imports],
      providers: [
        ...providers,
        {
          provide: SseTransport,
          useFactory: (options: SseModuleOptions) => options.transport ?? new MemoryTransport(),
          inject: [SSE_MODULE_OPTIONS],
        },
        SseHub,
        SseExplorer,
        // documents the generated routes when @nestjs/swagger is installed
        sseOpenApiProvider,
      ],
      exports: [SseHub, SseTransport, SSE_MODULE_OPTIONS],
    };
  }
}

function isTransport(value: unknown): value is SseTransport {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SseTransport).publish === 'function' &&
    typeof (value as SseTransport).start === 'function'
  );
}

function toOptions(value: SseTransport | SseModuleOptions | undefined): SseModuleOptions {
  if (value === undefined || value === null) return {};
  if (isTransport(value)) return { transport: value };
  if (typeof value !== 'object') {
    throw new SseConfigurationError('SseModule.forRoot takes a transport (for example new RedisTransport(...)) or an options object.');
  }
  if (value.transport !== undefined && !isTransport(value.transport)) {
    throw new SseConfigurationError('SseModule options.transport must implement SseTransport (start, publish, replay, clusterStats, close).');
  }
  return value;
}
