// Makes sure the machine has what the tests need before jest starts: redis-server and redis-cli
// for the Redis suites, Debian's chromium for the browser tests (test/browser). A fresh CI machine
// gets them from Debian's packages here; elsewhere the error says how to install them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where the browser tests look for Chromium. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command, args) {
  console.log(`prepare: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status !== 0) throw new Error(`prepare: '${command} ${args.join(' ')}' failed with exit code ${result.status}`);
}

/**
 * Installs Debian packages with apt-get when we may (as root, with apt-get on PATH); otherwise
 * throws `howTo`. Another install may hold the dpkg lock: apt-get waits for it rather than fail.
 */
function aptInstall(packages, howTo) {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !onPath('apt-get')) throw new Error(howTo);
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  run('apt-get', [...lock, 'update']);
  run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', ...packages]);
}

/**
 * Installs redis-server and redis-cli (Debian's redis-server package brings redis-tools) when
 * either is missing and we may install packages. The Cluster test needs redis-cli.
 */
function ensureRedisServer() {
  if (onPath('redis-server') && onPath('redis-cli')) return;
  aptInstall(
    ['redis-server', 'redis-tools'],
    'The Redis tests need redis-server and redis-cli on PATH. Install them (Debian/Ubuntu: sudo apt-get install -y redis-server; ' +
      'macOS: brew install redis) and run the tests again.',
  );
  for (const command of ['redis-server', 'redis-cli']) {
    if (!onPath(command)) throw new Error(`prepare: apt-get installed Redis but ${command} is not on PATH`);
  }
}

/** Installs chromium when it is missing and we may install packages; resolves with its path. */
export async function ensureChromium() {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  aptInstall(
    ['chromium'],
    `The browser tests need Chromium at ${CHROMIUM_PATH}. Install it as root ` +
      '(sudo apt-get update && sudo apt-get install -y chromium), or set CHROMIUM_PATH to a Chromium binary.',
  );
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} is still missing; set CHROMIUM_PATH to its binary.`);
  }
  return CHROMIUM_PATH;
}

export async function prepareMachine() {
  ensureRedisServer();
  // the browser tests (test/browser) drive Debian's chromium
  await ensureChromium();
}
