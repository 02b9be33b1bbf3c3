// Makes sure Debian's chromium is on the machine for the browser tests (test/browser), as
// prepareMachine() in prepare.js does before jest starts:
//   node test/utils/chromium.js
import { ensureChromium } from './prepare.js';

await ensureChromium();
