import { Controller, Get, Header, NotFoundException } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { broadcastToken, DEV_BROADCAST_TOKEN } from './broadcast-token.guard.js';
import { renderPage } from './page.html.js';

/** The one-file ES module build of @nest-sse/client, read once. */
let clientBundle: string | undefined;

/** The page at `/`: live events, channel picker, a broadcast form, private notifications and live stats. */
@Controller()
export class PageController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  page(): string {
    // Only the development default is put in the page; a real token never is.
    const token = broadcastToken() === DEV_BROADCAST_TOKEN ? DEV_BROADCAST_TOKEN : '';
    return renderPage(token);
  }

  /** The client as one ES module file, which the page imports without a bundler or an import map. */
  @Get('client.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  client(): string {
    try {
      clientBundle ??= readFileSync(fileURLToPath(import.meta.resolve('@nest-sse/client/browser')), 'utf8');
    } catch {
      throw new NotFoundException('The client bundle is missing: run npm run build.');
    }
    return clientBundle;
  }
}
