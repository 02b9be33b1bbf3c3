import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

// The README's API is the packages' exports: every name a package exports is documented, and every
// export-like name the README shows (in backticks or code) is exported by one of the packages.

const root = join(import.meta.dirname ?? process.cwd(), '..', '..');
const PACKAGES = ['core', 'redis', 'testing', 'client'];
/** Names the READMEs show that are not exports: environment variables and classes of an example app. */
const NOT_EXPORTS = new Set(['SSE_BROADCAST_TOKEN', 'SSE_DEMO_USERS', 'SSE_STREAM_SECRET', 'SseConfig']);

/** Every name (values and types) the package's barrel exports, read by the TypeScript compiler. */
function exportsOf(name: string): string[] {
  const entry = join(root, 'packages', name, 'src', 'index.ts');
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return checker.getExportsOfModule(symbol).map((s) => s.getName());
}

/** Names in the README's backticks and code blocks that look like exports: `SseX`, `SSE_X`, `RedisX`. */
function namesIn(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/\b(Sse[A-Z]\w*|Redis[A-Z]\w*|(?:SSE|LAST|MAX)_[A-Z_]+)\b/g)) names.add(match[1]);
  return names;
}

const readme = (path: string): string => readFileSync(join(root, path), 'utf8');

describe('the README documents the public API, and only that', () => {
  const exported = new Map(PACKAGES.map((name) => [name, exportsOf(name)]));
  const documents = [readme('README.md'), ...PACKAGES.map((name) => readme(`packages/${name}/README.md`))].join('\n');

  it.each(PACKAGES)('documents every export of @nest-sse/%s', (name) => {
    const undocumented = exported.get(name)!.filter((n) => !new RegExp(`\\b${n}\\b`).test(documents));
    expect(undocumented).toEqual([]);
  });

  it('exports every API name the READMEs show', () => {
    const all = new Set([...exported.values()].flat());
    const unknown = [...namesIn(documents)].filter((n) => !all.has(n) && !NOT_EXPORTS.has(n));
    expect(unknown).toEqual([]);
  });
});
