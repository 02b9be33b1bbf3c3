import { DynamicModule, Global, Module, Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { SseModuleAsyncOptions, SseModuleOptions, SseOptionsFactory } from './interfaces/sse-module-options.interface.js';
import { SseTransport } from './interfaces/sse-transport.interface.js';
import { sseOpenApiProvider } from './openapi/sse-openapi.js';
import { SseExplorer } from './sse.explorer.js';
import { SseHub } from './sse.hub.js';
import { HUB_PARTS } from './hub/hub-parts.js';
import { SseEndpointRuntimes } from './http/sse-endpoint-runtimes.js';
import { SSE_MODULE_OPTIONS } from './sse.constants.js';
import { MemoryTransport } from './transports/memory.transport.js';
import { SseConfigurationError } from './errors/sse-configuration.error.js';
import { describeValue } from './validation/options-schema.js';
import { isTransport, validateAsyncOptions, validateModuleOptions } from './validation/sse-options.validation.js';

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
    const options = toOptions(transportOrOptions, 'SseModule.forRoot', false);
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
    validateAsyncOptions('SseModule.forRootAsync', options);
    const providers: Provider[] = [...(options.extraProviders ?? [])];
    if (options.useFactory) {
      const factory = options.useFactory;
      providers.push({
        provide: SSE_MODULE_OPTIONS,
        useFactory: async (...args: unknown[]) => toOptions(await factory(...args), 'SseModule.forRootAsync useFactory', true),
        inject: options.inject ?? [],
      });
    } else {
      const token = (options.useClass ?? options.useExisting)!;
      if (options.useClass) providers.push({ provide: token, useClass: options.useClass });
      providers.push({
        provide: SSE_MODULE_OPTIONS,
        useFactory: async (factory: SseOptionsFactory) =>
          toOptions(
            await factory.createSseOptions(),
            `SseModule.forRootAsync ${options.useClass ? 'useClass' : 'useExisting'} ${token.name}.createSseOptions()`,
            true,
          ),
        inject: [token],
      });
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
          // checked again here for a value put in place of ours (overrideProvider(SSE_MODULE_OPTIONS) in a test)
          useFactory: (options: SseModuleOptions) => {
            validateModuleOptions('SseModule options (the SSE_MODULE_OPTIONS provider)', options);
            return options.transport ?? new MemoryTransport();
          },
          inject: [SSE_MODULE_OPTIONS],
        },
        ...HUB_PARTS,
        SseHub,
        SseEndpointRuntimes,
        SseExplorer,
        // documents the generated routes when @nestjs/swagger is installed
        sseOpenApiProvider,
      ],
      // SseEndpointRuntimes: for the @SseEndpoint controllers of every module (not a package export)
      exports: [SseHub, SseTransport, SSE_MODULE_OPTIONS, SseEndpointRuntimes],
    };
  }
}

/**
 * The module options from what `forRoot` got or a `forRootAsync` factory made, checked: a
 * transport alone stands for `{ transport }`.
 */
function toOptions(value: SseTransport | SseModuleOptions | undefined, source: string, async: boolean): SseModuleOptions {
  if (value === undefined && !async) return {};
  if (value === undefined || value === null) {
    throw new SseConfigurationError(
      `${source} ${async ? 'returned' : 'got'} ${String(value)}. ${async ? 'Return' : 'Give'} the module options ({ transport, defaults, ... }), a transport, ` +
        `or {} for the in-memory transport with every default.`,
    );
  }
  if (isTransport(value)) return { transport: value };
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SseConfigurationError(
      `${source} ${async ? 'returned' : 'got'} ${describeValue(value)}; it takes a transport (for example new RedisTransport(...)) or an options object.`,
    );
  }
  validateModuleOptions(`${source} options`, value);
  return value;
}
