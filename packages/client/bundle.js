// One ES module file for browsers (`<script type="module">` imports it without an import map),
// built from the compiled modules in dist/ after `tsc -b`; it ships beside them as dist/browser.js.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), 'dist');
const outfile = join(dist, 'browser.js');
await build({
  entryPoints: [join(dist, 'index.js')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
// the bundle exports what index.js does: its declarations are index.d.ts's
writeFileSync(join(dist, 'browser.d.ts'), "export * from './index.js';\n");
const code = readFileSync(outfile);
if (process.argv.includes('--size')) {
  console.log(`dist/browser.js: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} bytes gzipped`);
}
