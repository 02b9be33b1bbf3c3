import type { IncomingMessage } from 'node:http';

/** The `Content-Type` essence, lower case, without parameters. */
export function mediaType(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  if (!header) return undefined;
  return header.split(';', 1)[0].trim().toLowerCase();
}

/** Whether a media type is JSON: `application/json` or a `+json` suffix. */
export function isJsonMediaType(type: string | undefined): boolean {
  return type === 'application/json' || (type?.endsWith('+json') ?? false);
}
