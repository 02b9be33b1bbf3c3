// A CommonJS app that requires the ES module packages (Node 20.19 and later load them with
// require) and runs one broadcast over Redis, on the lowest versions the packages' peer ranges allow.
'use strict';
require('reflect-metadata');
const { readFileSync } = require('node:fs');
const { get } = require('node:http');
const { join } = require('node:path');
const { Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { SseEndpoint, SseHub, SseModule } = require('@nest-sse/core');
const { RedisTransport } = require('@nest-sse/redis');
const { SseTestClient } = require('@nest-sse/testing');
const { SseClient } = require('@nest-sse/client');

// decorators applied as the functions they are: plain JavaScript has no decorator syntax
class AlertsController {}
SseEndpoint('/alerts', { access: { broadcast: 'disabled' } })(AlertsController);

function appModule() {
  class AppModule {}
  Module({
    imports: [SseModule.forRoot(new RedisTransport({ url: process.env.REDIS_URL, prefix: 'consumer_cjs' }))],
    controllers: [AlertsController],
  })(AppModule);
  return AppModule;
}

/** The version of a package in this app's node_modules. */
function installed(name) {
  return JSON.parse(readFileSync(join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;
}

async function main() {
  const first = await NestFactory.create(appModule(), { logger: false });
  const second = await NestFactory.create(appModule(), { logger: false });
  await first.listen(0, '127.0.0.1');
  await second.init();
  const { port } = first.getHttpServer().address();

  const text = await new Promise((resolve, reject) => {
    get(`http://127.0.0.1:${port}/alerts`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
        if (body.includes('event: alert\n')) {
          res.destroy();
          resolve(body);
        } else if (body.includes('event: connection\n')) {
          second.get(SseHub).broadcast({ event: 'alert', data: 'disk full' }).catch(reject);
        }
      });
      res.on('end', () => reject(new Error(`the stream ended before the alert:\n${body}`)));
    }).on('error', reject);
  });
  console.log(JSON.stringify({
    alert: /event: alert\ndata: disk full\n\n/.test(text),
    backend: (await first.get(SseHub).stats()).backend,
    testing: typeof SseTestClient.connect,
    client: typeof SseClient,
    ioredis: installed('ioredis'),
    nest: installed('@nestjs/core'),
  }));
  await second.close();
  await first.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
