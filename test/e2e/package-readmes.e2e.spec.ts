import { describe, it, expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { OnSseConnect, SseEndpoint, SseHub, SseModule, SseStream } from '@nest-sse/core';
import { SseTestClient } from '@nest-sse/testing';
import { EventSource } from 'eventsource';

// The examples of packages/core/README.md and packages/testing/README.md, as written there.

@SseEndpoint('/events', { heartbeatInterval: 30 })
export class EventsController implements OnSseConnect {
  onSseConnect(stream: SseStream) {
    stream.send({ event: 'hello', data: { id: stream.id, room: stream.metadata.room ?? 'lobby' } });
  }
}

@Injectable()
export class Alerts {
  constructor(private readonly hub: SseHub) {}
  // every client of /events?room=ops, on every node
  raise(text: string) {
    return this.hub.broadcast({ event: 'alert', data: { text }, filter: { room: 'ops' } });
  }
}

@Module({ imports: [SseModule.forRoot()], controllers: [EventsController], providers: [Alerts] })
export class AppModule {}

describe('the package READMEs', () => {
  it('core: the hello event and a filtered alert from a service', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.listen(0, '127.0.0.1');
      const ops = await SseTestClient.connect(app, '/events?room=ops', { EventSource, events: ['hello', 'alert'] });
      const hello = JSON.parse((await ops.waitFor('hello')).data);
      expect(hello.room).toBe('ops');
      expect(typeof hello.id).toBe('string');
      expect(await app.get(Alerts).raise('disk full')).toBe(1);
      expect(JSON.parse((await ops.waitFor('alert')).data)).toEqual({ text: 'disk full' });
      ops.close();
    } finally {
      await app.close();
    }
  });

  it('sends the alert to the ops room only', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication();
    try {
      await app.listen(0);
      const ops = await SseTestClient.connect(app, '/events?room=ops', { EventSource, events: ['alert'] });
      const lobby = await SseTestClient.connect(app, '/events?room=lobby', { EventSource, events: ['alert'] });

      await app.get(SseHub).broadcast({ event: 'alert', data: 'disk full', filter: { room: 'ops' } });

      expect((await ops.waitFor('alert', { timeout: 2000 })).data).toBe('disk full');
      expect(lobby.named('alert')).toHaveLength(0);
      await app.close();
      ops.close();
      lobby.close();
    } finally {
      await app.close();
    }
  });

  it('testing: the jest configuration for an ESM Nest 12 app works as copied', async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const blocks = labelledBlocks(readFileSync(join(root, 'packages/testing/README.md'), 'utf8'));
    expect(Object.keys(blocks).sort()).toEqual(['jest.config.mjs', 'package.json (the parts that matter)', 'test/alerts.spec.ts', 'tsconfig.json']);
    // the app under test is the one of packages/core/README.md
    const core = readFileSync(join(root, 'packages/core/README.md'), 'utf8');
    const appModule = [...core.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).find((code) => code.includes('export class AppModule'))!;
    // inside the repository, so that the copied project finds the installed packages
    const dir = mkdtempSync(join(root, '.readme-app-'));
    try {
      writeFileSync(join(dir, 'jest.config.mjs'), blocks['jest.config.mjs']);
      writeFileSync(join(dir, 'tsconfig.json'), blocks['tsconfig.json']);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, ...JSON.parse(blocks['package.json (the parts that matter)']) }));
      mkdirSync(join(dir, 'src'));
      mkdirSync(join(dir, 'test'));
      writeFileSync(join(dir, 'src/app.module.ts'), appModule);
      writeFileSync(join(dir, 'test/alerts.spec.ts'), blocks['test/alerts.spec.ts']);
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const [command, ...args] = JSON.parse(blocks['package.json (the parts that matter)']).scripts.test.split(' ');
      expect(command).toBe('node');
      const env = { ...process.env };
      for (const key of Object.keys(env)) if (key.startsWith('JEST_') || key === 'NODE_OPTIONS') delete env[key];
      const started = Date.now();
      const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(process.execPath, args, { cwd: dir, env });
        let output = '';
        child.stdout.on('data', (chunk) => (output += chunk));
        child.stderr.on('data', (chunk) => (output += chunk));
        child.on('close', (code) => resolve({ code, output }));
      });
      console.log(`README jest run: ${Date.now() - started} ms`);
      expect(run.output).toMatch(/Tests:\s+1 passed, 1 total/);
      expect(run.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/** The fenced blocks of a README whose first line is a `// name` comment, by name, without that line. */
function labelledBlocks(markdown: string): Record<string, string> {
  const blocks: Record<string, string> = {};
  for (const match of markdown.matchAll(/```\w*\n\/\/ ([^\n]+)\n([\s\S]*?)```/g)) blocks[match[1]] = match[2];
  return blocks;
}
