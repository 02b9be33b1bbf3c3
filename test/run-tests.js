// Runs every test (jest in its ES module mode) and ends with one plain summary line.
//
// The consumer test (test/consumer) packs the packages, and packing rebuilds their dist, which
// other suites load (samples, Redis node processes): it runs in a jest run of its own, before the
// others. Arguments are test paths: `node test/run-tests.js test/consumer test/e2e` runs the
// consumer test, then the e2e suites; none runs everything.
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

const CONSUMER = 'test/consumer';
const args = process.argv.slice(2).map((arg) => arg.replace(/^\.\//, '').replace(/\/$/, ''));
// a path at or above test/consumer selects the consumer test; the other run always leaves it out
const selectsConsumer = args.length === 0 || args.some((arg) => CONSUMER.startsWith(arg) || arg.startsWith(CONSUMER));
const others = args.filter((arg) => !arg.startsWith(CONSUMER));
const runs = [];
if (selectsConsumer) runs.push([CONSUMER]);
if (args.length === 0 || others.length > 0)
  runs.push([...others, '--testPathIgnorePatterns', '/node_modules/', '/dist/', `/${CONSUMER}/`]);

const dir = mkdtempSync(join(tmpdir(), 'nest-sse-jest-'));
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const totals = { passed: 0, failed: 0, skipped: 0, total: 0 };
process.exitCode = 0;
for (const [i, jestArgs] of runs.entries()) {
  const report = join(dir, `report-${i}.json`);
  // --forceExit: a test that fails half-way can leave a handle open (a client reconnecting to an
  // app that closed); jest then waits for it for ever after reporting. The report is what counts.
  const run = spawnSync(
    process.execPath,
    ['--experimental-vm-modules', jest, '--json', '--forceExit', '--outputFile', report, ...jestArgs],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        NODE_OPTIONS: [process.env.NODE_OPTIONS, '--no-warnings=ExperimentalWarning', '--expose-gc'].filter(Boolean).join(' '),
      },
    },
  );
  // jest's own status; a run with no tests or no readable report fails even when jest says 0
  if (run.signal) console.error(`jest (${jestArgs.join(' ')}) was ended by ${run.signal}`);
  if (run.status !== 0) process.exitCode = run.status ?? 1;
  try {
    const result = JSON.parse(readFileSync(report, 'utf8'));
    totals.passed += result.numPassedTests;
    totals.failed += result.numFailedTests;
    totals.skipped += result.numPendingTests;
    totals.total += result.numTotalTests;
    if (result.numTotalTests === 0) process.exitCode = 1;
  } catch {
    process.exitCode = 1;
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
