import { Injectable } from '@nestjs/common';
import { SseEventError } from '../errors/sse-event.error.js';
import { nearest } from '../validation/options-schema.js';

/** The names `broadcast({ endpoint })` takes: each `@SseEndpoint` path and the full paths it is served at. */
@Injectable()
export class EndpointNames {
  /** Name → the decorator path. */
  private readonly names = new Map<string, string>();

  /** Records an endpoint's name (the `@SseEndpoint` path) and the full paths its stream is served at. */
  add(path: string, streamPaths: readonly string[]): void {
    this.names.set(path, path);
    for (const full of streamPaths) if (!this.names.has(full)) this.names.set(full, path);
  }

  /**
   * The endpoint a broadcast names, as the registry knows it. An app without endpoints (a node
   * that only publishes) cannot tell, and passes the name on.
   */
  resolve(name: string | undefined): string | undefined {
    if (name === undefined || this.names.size === 0) return name;
    const path = this.names.get(name) ?? this.names.get(`/${name.trim().replace(/^\/+|\/+$/g, '')}`);
    if (path === undefined) {
      const known = [...new Set(this.names.values())];
      const guess = nearest(name.startsWith('/') ? name : `/${name}`, known);
      throw new SseEventError(
        `No endpoint '${name}' in this app${guess ? `; did you mean '${guess}'?` : '.'} Its endpoints are ${known.join(', ')} ` +
          `(the @SseEndpoint paths; the full paths they are served at are accepted too).`,
      );
    }
    return path;
  }
}
