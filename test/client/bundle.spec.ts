import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../utils/browser.js';

// What ships for pages without a bundler: dist/browser.js, built by `npm run build`.
const CLIENT = join(ROOT, 'packages', 'client');
const BUNDLE = join(CLIENT, 'dist', 'browser.js');

describe('@nest-sse/client browser bundle', () => {
  it('is one ES module file that imports nothing, exported as @nest-sse/client/browser', async () => {
    const code = readFileSync(BUNDLE, 'utf8');
    expect(code).not.toMatch(/\bimport\s*[{*("'\w]/);
    expect(code).not.toMatch(/\brequire\(/);
    const module = await import(pathToFileURL(BUNDLE).href);
    expect(typeof module.SseClient).toBe('function');
    expect(typeof module.SseParser).toBe('function');
    const pkg = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8'));
    expect(pkg.exports['./browser'].default).toBe('./dist/browser.js');
  });

  it('has the gzip size the READMEs state', () => {
    const kb = (gzipSync(readFileSync(BUNDLE), { level: 9 }).length / 1024).toFixed(1);
    for (const readme of [join(CLIENT, 'README.md'), join(ROOT, 'README.md')]) {
      const stated = [...readFileSync(readme, 'utf8').matchAll(/([\d.]+) KB\s+minified and gzipped/g)].map((m) => m[1]);
      expect({ readme, stated }).toEqual({ readme, stated: [kb] });
    }
  });
});
