// `npm test` runs this before jest: the packages' sources import each other without a cycle
// (type-only imports included, since a cycle of types is still a knot a reader has to untie), and
// no source file is longer than MAX_LINES. Dependency-free: imports are read with a regular
// expression, which is enough for this codebase's plain `import ... from './x.js'` lines; a
// package's imports of another (`@nest-sse/core`) count as edges to that package's entry source,
// so a cycle between packages is caught too.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_LINES = 400;
/** Known exceptions, each with its reason; remove an entry as soon as its file meets the rules. */
const KNOWN = new Map();
const known = (file) => KNOWN.has(relative(root, file));

function sourcesOf(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourcesOf(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const packages = readdirSync(join(root, 'packages')).map((name) => join(root, 'packages', name, 'src'));
const files = packages.flatMap((dir) => {
  try {
    return sourcesOf(dir);
  } catch {
    return [];
  }
});

// `import ... from './x.js'`, `export ... from './x.js'`, `import('./x.js')`, `import './x.js'`,
// and the same with `@nest-sse/<package>` or `@nest-sse/<package>/<entry>`
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+|@nest-sse\/[^'"]+)['"]/g;

/** The source file an import names (it may be none of the packages' sources: a JSON file, say). */
function target(file, specifier) {
  if (specifier.startsWith('.')) return resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
  const [, name, entry = 'index'] = /^@nest-sse\/([^/]+)(?:\/(.+))?$/.exec(specifier);
  return join(root, 'packages', name, 'src', `${entry}.ts`);
}

const graph = new Map();
const problems = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_LINES && !known(file)) problems.push(`${relative(root, file)} has ${lines} lines (at most ${MAX_LINES})`);
  const deps = [];
  for (const match of text.matchAll(IMPORT)) {
    const dep = target(file, match[1]);
    if (files.includes(dep)) deps.push(dep);
  }
  graph.set(file, deps);
}

// Depth-first search; a back edge is a cycle, reported once by its set of files.
const state = new Map();
const stack = [];
const seen = new Set();
function visit(file) {
  state.set(file, 'open');
  stack.push(file);
  for (const dep of graph.get(file)) {
    if (state.get(dep) === 'open') {
      const files = stack.slice(stack.indexOf(dep));
      const cycle = files.concat(dep).map((f) => relative(root, f));
      const key = [...new Set(cycle)].sort().join('|');
      if (!seen.has(key) && !files.some(known)) {
        seen.add(key);
        problems.push(`import cycle: ${cycle.join(' -> ')}`);
      }
    } else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of files) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  process.exitCode = 1;
} else {
  console.log(`sources: ${files.length} files, no import cycle, none over ${MAX_LINES} lines`);
}
