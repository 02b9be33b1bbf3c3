// Runs every test (jest in its ES module mode) and ends with one plain summary line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareMachine } from './utils/prepare.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// NEST_SSE_SKIP_PREPARE=1 skips the machine preparation (test/utils/prepare.js), for a machine
// set up by hand or by an earlier run.
if (process.env.NEST_SSE_SKIP_PREPARE !== '1') await prepareMachine();

const dir = mkdtempSync(join(tmpdir(), 'nest-sse-jest-'));
const report = join(dir, 'report.json');
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const args = ['--experimental-vm-modules', jest, '--json', '--outputFile', report, ...process.argv.slice(2)];
const run = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, '--no-warnings=ExperimentalWarning', '--expose-gc'].filter(Boolean).join(' ') },
});
// jest's own status; a run with no tests or no readable report fails even when jest says 0
process.exitCode = run.status ?? 1;
let summary = 'tests: 0 passed, 0 failed';
try {
  const result = JSON.parse(readFileSync(report, 'utf8'));
  summary = `tests: ${result.numPassedTests} passed, ${result.numFailedTests} failed, ${result.numPendingTests} skipped`;
  if (result.numTotalTests === 0) process.exitCode = 1;
} catch {
  process.exitCode = 1;
}
rmSync(dir, { recursive: true, force: true });
console.log(summary);
