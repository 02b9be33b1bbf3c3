// Makes sure Debian's chromium is on the machine for the browser tests (test/browser).
// Called by prepareMachine() in prepare.js before jest starts; runnable on its own too:
//   node test/utils/chromium.js
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the browser tests look for Chromium. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Installs chromium with apt-get when it is missing and we are root; otherwise says how. */
export async function ensureChromium() {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new Error(
      `The browser tests need Chromium at ${CHROMIUM_PATH}. Install it as root ` +
        '(sudo apt-get update && sudo apt-get install -y chromium), or set CHROMIUM_PATH to a Chromium binary.',
    );
  }
  console.log('Installing chromium with apt-get (browser tests)...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another install (redis-server) may hold the dpkg lock: wait for it rather than fail.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  execFileSync('apt-get', [...lock, 'update'], { stdio: 'inherit', env });
  execFileSync('apt-get', [...lock, 'install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} is still missing; set CHROMIUM_PATH to its binary.`);
  }
  return CHROMIUM_PATH;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await ensureChromium();
}
