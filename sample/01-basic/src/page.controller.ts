import { Controller, Get, Header } from '@nestjs/common';
import { broadcastToken, DEV_BROADCAST_TOKEN } from './broadcast-token.guard.js';
import { renderPage } from './page.html.js';

/** The page at `/`: live events, channel picker and a broadcast form. */
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
}
