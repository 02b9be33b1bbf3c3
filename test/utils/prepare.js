// Makes sure the machine has what the tests need before jest starts. A fresh CI machine gets
// redis-server and redis-cli from Debian's packages here; elsewhere the error says how to install it.
import { spawnSync } from 'node:child_process';
import { ensureChromium } from './chromium.js';

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
 * Installs redis-server and redis-cli (Debian's redis-server package brings redis-tools) when
 * either is missing and we may install packages. The Cluster test needs redis-cli.
 */
async function ensureRedisServer() {
  if (onPath('redis-server') && onPath('redis-cli')) return;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !onPath('apt-get')) {
    throw new Error(
      'The Redis tests need redis-server and redis-cli on PATH. Install them (Debian/Ubuntu: sudo apt-get install -y redis-server; ' +
        'macOS: brew install redis) and run the tests again.',
    );
  }
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server', 'redis-tools']);
  for (const command of ['redis-server', 'redis-cli']) {
    if (!onPath(command)) throw new Error(`prepare: apt-get installed Redis but ${command} is not on PATH`);
  }
}

export async function prepareMachine() {
  await ensureRedisServer();
  // the browser tests (test/browser) drive Debian's chromium
  await ensureChromium();
}
