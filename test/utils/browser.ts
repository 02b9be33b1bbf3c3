import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { CHROMIUM_PATH } from './prepare.js';
import { freePort } from './redis-server.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Screenshots and other files a run keeps (git-ignored). */
export const ARTIFACTS = join(ROOT, 'test', 'artifacts');

export interface ChildApp {
  url: string;
  process: ChildProcess;
  /** What the process printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a compiled app (`node <script>`) on a free port and resolves once it printed `ready`; on
 * another port when the one found free was taken before the app bound it.
 */
export async function startChildApp(script: string, env: Record<string, string>, ready: RegExp, timeout = 60_000): Promise<ChildApp> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePort(script, env, ready, timeout);
    } catch (err) {
      if (attempt === 3 || !(err as Error).message.includes('EADDRINUSE')) throw err;
    }
  }
}

async function startOnFreePort(script: string, env: Record<string, string>, ready: RegExp, timeout: number): Promise<ChildApp> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within ${timeout} ms:\n${output}`)), timeout);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with code ${code} before it was ready:\n${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export interface TestBrowser {
  /** One browser profile: its pages share an origin's BroadcastChannel and Web Locks, like tabs. */
  context: BrowserContext;
  close(): Promise<void>;
}

/** Debian's Chromium, headless, with a fresh profile that is removed on close. */
export async function launchChromium(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'nest-sse-chromium-'));
  // Playwright refuses --user-data-dir in args: a persistent context is how it takes one.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 900 },
    timeout: 30_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Path of an artifact file, its folder created. */
export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
