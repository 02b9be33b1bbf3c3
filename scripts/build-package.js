// The `prepack` of every package: a clean build of what `npm pack` and `npm publish` ship.
// It removes the package's dist and its build info (kept outside dist, so it never ships; left
// behind alone it would make `tsc -b` skip the package and pack an empty dist), then builds the
// package and, when they are stale, the packages it references.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

for (const path of ['dist', 'tsconfig.build.tsbuildinfo']) rmSync(path, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const build = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(build.status ?? 1);
