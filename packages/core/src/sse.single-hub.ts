import type { Module } from '@nestjs/core/injector/module.js';
import type { ModulesContainer } from '@nestjs/core';
import { SseConfigurationError } from './errors/sse-configuration.error.js';
import { hubImportedTwice } from './sse.messages.js';

/**
 * Throws when the app holds more than one instance of `sseModule`: each `forRoot()` call is a
 * module of its own to Nest (it tells modules apart by reference), so two calls would make two
 * hubs, and a broadcast on one would never reach the other's streams.
 */
export function assertSingleHub(modules: ModulesContainer, sseModule: Function): void {
  const instances = [...modules.values()].filter((m) => m.metatype === sseModule);
  if (instances.length <= 1) return;
  const importers: string[] = [];
  for (const module of modules.values()) {
    for (const entry of declaredImports(module)) {
      if (entry !== null && typeof entry === 'object' && (entry as { module?: unknown }).module === sseModule) {
        importers.push(module.metatype?.name ?? 'a module');
      }
    }
  }
  throw new SseConfigurationError(hubImportedTwice(instances.length, importers));
}

/** What a module listed in `imports`: its decorator's list, and a dynamic module's own. */
function declaredImports(module: Module): unknown[] {
  const declared: unknown[] = module.metatype ? (Reflect.getMetadata('imports', module.metatype) ?? []) : [];
  const container = (module as unknown as { container?: { getDynamicMetadataByToken?(token: string, key: string): unknown[] } }).container;
  const dynamic = container?.getDynamicMetadataByToken?.(module.token, 'imports') ?? [];
  return [...declared, ...dynamic];
}
