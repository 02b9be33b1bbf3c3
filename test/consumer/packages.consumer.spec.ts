// The packages as a user gets them: `npm pack` in every workspace (its prepack builds what it
// ships), the tarballs checked file by file, then installed into fresh apps in a temporary folder
// outside the repository, with everything else from the registry: a TypeScript ES module app under
// `moduleResolution: nodenext` (two nodes on a real redis-server, and a jest test with the ESM
// config the testing package's README gives) and a CommonJS app that `require`s the packages on
// the lowest versions of their peer ranges. test/run-tests.js runs this file on its own, before
// the other suites: packing rebuilds the packages' dist, which the other suites load.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '../utils/redis-server.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const PACKAGES = ['core', 'redis', 'testing', 'client'] as const;
type PackageDir = (typeof PACKAGES)[number];
/** Installs and builds take a while on a cold npm cache; this only stops a hung step. */
const SLOW = 10 * 60_000;

interface PackedFile {
  path: string;
  size: number;
}
interface Packed {
  name: string;
  filename: string;
  size: number;
  unpackedSize: number;
  files: PackedFile[];
  tarball: string;
  /** The tarball's contents, extracted. */
  dir: string;
  manifest: Record<string, any>;
}

const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** The version the repository itself tests with, so the apps match it and the npm cache serves them. */
function repoVersion(name: string): string {
  const version = rootManifest.devDependencies[name];
  if (!version) throw new Error(`${name} is not a devDependency of the repository`);
  return version;
}

/** The lowest version a range allows (its first `x.y.z`), e.g. `^5.0.0 || ^6.0.0` → `5.0.0`. */
function lowest(range: string): string {
  const match = /\d+\.\d+\.\d+/.exec(range);
  if (!match) throw new Error(`no version in the range ${range}`);
  return match[0];
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** The environment of a user's shell: no npm script variables, no repository binaries on PATH. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'NODE_OPTIONS' || key.startsWith('JEST_')) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((entry) => entry && relative(root, entry).startsWith('..'))
    .join(delimiter);
  return { ...env, ...extra };
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its output when it exits non-zero. */
function run(command: string, args: string[], cwd: string, env = userEnv()): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise({ stdout, stderr });
      else
        reject(
          new Error(
            `'${command} ${args.join(' ')}' in ${cwd} failed (${code ?? signal}):\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`,
          ),
        );
    });
  });
}

function npmInstall(dir: string): Promise<RunResult> {
  return run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
}

/** Every file under `dir`, as posix paths relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(dir, posix.join(prefix, entry.name)) : [posix.join(prefix, entry.name)],
  );
}

/**
 * Module specifiers of the static imports, re-exports and literal dynamic imports in a JS or d.ts
 * file (comments left out: JSDoc examples import things too).
 */
function specifiers(source: string): string[] {
  const found = new Set<string>();
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const re of [/\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const match of code.matchAll(re)) found.add(match[1]);
  }
  return [...found];
}

/** `@scope/name/sub/path.js` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The jest config file and the command to run jest, as packages/testing/README.md gives them. */
function readmeJestSetup(): { file: string; config: string; command: string } {
  const readme = readFileSync(join(root, 'packages', 'testing', 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2] }));
  let file: string | undefined;
  let config: string | undefined;
  for (const block of blocks) {
    const named = /^\s*\/\/\s*(jest\.config\.(?:js|mjs|cjs))\b/.exec(block.body);
    if (named) {
      file = named[1];
      config = block.body;
      break;
    }
  }
  const command = blocks
    .filter((b) => b.lang === 'bash' || b.lang === 'sh')
    .flatMap((b) => b.body.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .find((line) => /\bjest\b/.test(line) && !/\bnpm (install|i)\b/.test(line));
  if (!file || !config || !command) {
    throw new Error(
      'packages/testing/README.md must give the ESM jest config in a code block that starts with a comment naming its file ' +
        '(// jest.config.js) and the command that runs jest in a bash block',
    );
  }
  return { file, config, command };
}

let work: string;
let redis: RedisServer;
const packed = new Map<PackageDir, Packed>();
let esmInstall: Promise<unknown>;
let cjsInstall: Promise<unknown>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nest-sse-consumer-'));
  expect(relative(root, work).startsWith('..')).toBe(true);
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  // one at a time: redis's prepack builds the core it references when core's build is stale
  for (const dir of PACKAGES) {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tarballs], join(root, 'packages', dir));
    const [info] = JSON.parse(stdout.slice(stdout.indexOf('[')));
    const tarball = join(tarballs, info.filename);
    const unpacked = join(work, 'unpacked', dir);
    mkdirSync(unpacked, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1'], work);
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8'));
    packed.set(dir, { ...info, tarball, dir: unpacked, manifest });
  }
  report();
  redis = await RedisServer.start();
  // both apps install at once (mostly waiting on the npm cache and the registry)
  esmInstall = prepareEsmApp();
  cjsInstall = prepareCjsApp();
  await Promise.allSettled([esmInstall, cjsInstall]);
}, SLOW);

afterAll(async () => {
  await redis?.stop();
  // NEST_SSE_KEEP_CONSUMER=1 keeps the tarballs and apps to look at
  if (work && process.env.NEST_SSE_KEEP_CONSUMER !== '1') rmSync(work, { recursive: true, force: true });
  else if (work) process.stdout.write(`consumer apps kept in ${work}\n`);
});

/** Prints each tarball's size and files. */
function report(): void {
  const kB = (n: number): string => `${(n / 1000).toFixed(1)} kB`;
  const lines = ['', 'Packed tarballs:'];
  for (const p of packed.values()) {
    lines.push(`  ${p.filename}: ${kB(p.size)} packed, ${kB(p.unpackedSize)} unpacked, ${p.files.length} files`);
    for (const f of [...p.files].sort((a, b) => a.path.localeCompare(b.path)))
      lines.push(`    ${String(f.size).padStart(7)}  ${f.path}`);
  }
  process.stdout.write(lines.join('\n') + '\n\n');
}

/** `file:` dependencies on the tarballs of the given packages. */
function tarballDeps(dirs: readonly PackageDir[]): Record<string, string> {
  return Object.fromEntries(dirs.map((dir) => [packed.get(dir)!.name, `file:${packed.get(dir)!.tarball}`]));
}

async function prepareEsmApp(): Promise<void> {
  const app = join(work, 'esm-app');
  cpSync(join(here, 'esm-app'), app, { recursive: true });
  const pin = (names: string[]): Record<string, string> => Object.fromEntries(names.map((n) => [n, repoVersion(n)]));
  const manifest = {
    name: 'consumer-esm-app',
    private: true,
    type: 'module',
    dependencies: {
      ...tarballDeps(PACKAGES),
      ...pin(['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'ioredis', 'reflect-metadata', 'rxjs']),
    },
    devDependencies: pin(['@nestjs/testing', '@types/jest', '@types/node', 'eventsource', 'jest', 'ts-jest', 'typescript']),
  };
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  await npmInstall(app);
}

async function prepareCjsApp(): Promise<void> {
  const app = join(work, 'cjs-app');
  cpSync(join(here, 'cjs-app'), app, { recursive: true });
  const peers: Record<string, string> = {};
  for (const p of packed.values()) {
    for (const [name, range] of Object.entries<string>(p.manifest.peerDependencies ?? {})) {
      if (name.startsWith('@nest-sse/') || p.manifest.peerDependenciesMeta?.[name]?.optional) continue;
      // where two packages ask for the same peer, the higher floor
      const floor = lowest(range);
      if (peers[name] === undefined || compareVersions(floor, peers[name]) > 0) peers[name] = floor;
    }
  }
  const manifest = {
    name: 'consumer-cjs-app',
    private: true,
    dependencies: {
      ...tarballDeps(PACKAGES),
      ...peers,
      '@nestjs/platform-express': peers['@nestjs/core'],
    },
  };
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  await npmInstall(app);
}

describe.each(PACKAGES)('the tarball of packages/%s', (dir) => {
  const pkg = (): Packed => packed.get(dir)!;

  it('holds compiled JS, declarations, README, LICENSE and package.json, and nothing else', () => {
    const paths = pkg().files.map((f) => f.path);
    expect(paths.filter((p) => !/^(package\.json|README\.md|LICENSE|dist\/.+\.(js|d\.ts))$/.test(p))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']));
    expect(paths.filter((p) => p.endsWith('.js') && !paths.includes(p.replace(/\.js$/, '.d.ts')))).toEqual([]);
    expect(readFileSync(join(pkg().dir, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('ships every file its exports map names', () => {
    const paths = new Set(pkg().files.map((f) => f.path));
    const targets: string[] = [];
    const collect = (entry: unknown): void => {
      if (typeof entry === 'string') targets.push(entry.replace(/^\.\//, ''));
      else if (entry !== null && typeof entry === 'object') Object.values(entry).forEach(collect);
    };
    collect(pkg().manifest.exports);
    expect(targets.filter((target) => !paths.has(target))).toEqual([]);
  });

  it('ships every file its own modules import, and no source map comment', () => {
    const files = new Set(walk(pkg().dir));
    const missing: string[] = [];
    for (const file of files) {
      if (!/\.(js|d\.ts)$/.test(file)) continue;
      const source = readFileSync(join(pkg().dir, file), 'utf8');
      expect(`${file}: ${/sourceMappingURL/.test(source)}`).toBe(`${file}: false`);
      for (const spec of specifiers(source).filter((s) => s.startsWith('.'))) {
        const target = posix.join(posix.dirname(file), spec);
        const wanted = file.endsWith('.d.ts') ? target.replace(/\.js$/, '.d.ts') : target;
        if (!files.has(wanted)) missing.push(`${file} → ${spec}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('ships no module that neither its exports map nor another shipped module reaches', () => {
    const files = new Set(walk(pkg().dir));
    const reached = new Set<string>();
    const queue: string[] = [];
    const collect = (entry: unknown): void => {
      if (typeof entry === 'string') queue.push(entry.replace(/^\.\//, ''));
      else if (entry !== null && typeof entry === 'object') Object.values(entry).forEach(collect);
    };
    collect(pkg().manifest.exports);
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (reached.has(file) || !files.has(file)) continue;
      reached.add(file);
      for (const spec of specifiers(readFileSync(join(pkg().dir, file), 'utf8')).filter((s) => s.startsWith('.'))) {
        const target = posix.join(posix.dirname(file), spec);
        queue.push(file.endsWith('.d.ts') ? target.replace(/\.js$/, '.d.ts') : target);
      }
    }
    // a module of types only compiles to an empty .js (`export {};`) that no .js imports, and its
    // declarations may be needed by nothing shipped (its users hold it privately): no code, no harm
    const module = (file: string) => file.replace(/\.(js|d\.ts)$/, '');
    const typesOnly = (file: string) =>
      file.endsWith('.js') &&
      specifiers(readFileSync(join(pkg().dir, file), 'utf8')).length === 0 &&
      /^export \{\};\s*$/.test(
        readFileSync(join(pkg().dir, file), 'utf8')
          .replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
          .trim(),
      );
    const empty = new Set([...files].filter(typesOnly).map(module));
    const reachedModules = new Set([...reached].map(module));
    const unreached = [...files].filter((file) => /\.(js|d\.ts)$/.test(file) && !reachedModules.has(module(file)));
    expect(unreached.filter((file) => !empty.has(module(file)))).toEqual([]);
  });

  it('declares every package its code and its declarations import', () => {
    const { manifest } = pkg();
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    const builtins = new Set(builtinModules);
    const undeclared = new Set<string>();
    // declarations too: an app type-checks them against its own node_modules, which may well hold
    // an undeclared package by chance (the apps here install every peer)
    for (const file of walk(pkg().dir).filter((f) => /\.(js|d\.ts)$/.test(f))) {
      for (const spec of specifiers(readFileSync(join(pkg().dir, file), 'utf8'))) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        if (!declared.has(packageOf(spec))) undeclared.add(`${packageOf(spec)} (${file})`);
      }
    }
    expect([...undeclared]).toEqual([]);
  });

  it('has the package.json fields users and the registry read', () => {
    const m = pkg().manifest;
    expect(m).toMatchObject({
      license: 'MIT',
      type: 'module',
      sideEffects: false,
      engines: { node: '>=20.19' },
      // a scoped package is published restricted unless told otherwise, also by a plain `npm publish`
      publishConfig: { access: 'public' },
      bugs: { url: 'https://github.com/nest-sse/nest-sse/issues' },
      repository: { type: 'git', url: 'git+https://github.com/nest-sse/nest-sse.git', directory: `packages/${dir}` },
      homepage: `https://github.com/nest-sse/nest-sse/tree/main/packages/${dir}#readme`,
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
    });
    expect(m.keywords.length).toBeGreaterThan(0);
    expect(m.description).toEqual(expect.any(String));
  });
});

describe('a TypeScript ES module app (moduleResolution nodenext) on the tarballs', () => {
  const app = (): string => join(work, 'esm-app');

  it(
    'builds against the shipped declarations (its jest test too), then streams what another node broadcasts over Redis',
    async () => {
      await esmInstall;
      // tsconfig.json checks the app and its test, and with skipLibCheck off the shipped
      // declarations too; tsconfig.build.json emits the app (skipping the declarations just checked)
      const tsc = join(app(), 'node_modules', 'typescript', 'bin', 'tsc');
      await run(process.execPath, [tsc, '-p', 'tsconfig.json'], app());
      await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], app());
      const { stdout } = await run(process.execPath, ['dist/main.js'], app(), userEnv({ REDIS_URL: redis.url }));
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      expect(result).toEqual({
        contentType: 'text/event-stream',
        welcome: true,
        frame: expect.stringMatching(/^id: \d+-\d+\nevent: score\ndata: \{"home":2,"away":1\}\n\n$/),
        backend: 'redis',
        encoder: 'event: a\ndata: x\ndata: y\n\n',
        client: 'function',
      });
    },
    SLOW,
  );

  it(
    "runs its jest test with the ESM config from @nest-sse/testing's README",
    async () => {
      await esmInstall;
      const { file, config, command } = readmeJestSetup();
      writeFileSync(join(app(), file), config);
      const { stdout, stderr } = await run('sh', ['-c', command], app());
      expect(`${stdout}\n${stderr}`).toMatch(/Tests:\s+1 passed, 1 total/);
    },
    SLOW,
  );
});

describe('a CommonJS app on the tarballs, with the lowest versions of their peer ranges', () => {
  it(
    'requires every package and streams what another node broadcasts over Redis',
    async () => {
      await cjsInstall;
      const app = join(work, 'cjs-app');
      const { stdout } = await run(process.execPath, ['index.js'], app, userEnv({ REDIS_URL: redis.url }));
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      const core = packed.get('core')!.manifest.peerDependencies;
      const ioredis = packed.get('redis')!.manifest.peerDependencies.ioredis;
      expect(result).toEqual({
        alert: true,
        backend: 'redis',
        testing: 'function',
        client: 'function',
        ioredis: lowest(ioredis),
        nest: lowest(core['@nestjs/core']),
      });
    },
    SLOW,
  );
});

// the tarballs' names are what `npm pack` prints; keep the list in step with the workspaces
it('packs every workspace', () => {
  expect(rootManifest.workspaces.map((w: string) => basename(w))).toEqual([...PACKAGES]);
});
