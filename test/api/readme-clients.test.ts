/**
 * Every `openstack` and `nova` command of README.md's `sh` code blocks runs as written against a
 * started Porthole with its demo server (the gateway `npm start` builds, on free loopback ports
 * instead of 6080, 6083 and 8774, which the test substitutes, as it puts the demo's id for a
 * `SERVER` placeholder), with Debian's real clients, an empty
 * HOME and only the environment the README's own `export` lines give. Each must exit 0 and show
 * the demo server (its id, or a console URL whose token opens it: a noVNC URL's token is the
 * demo's, a serial URL, `ws://...:PORT/?token=...`, is opened through Porthole and shows the
 * demo serial console's banner). `PORTHOLE_TEST_README=FILE`
 * checks a proposed text instead of README.md.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { serial } from '../../src/consoles/serial.ts';
import { DEMO_SERVER_ID } from '../../src/gateway.ts';
import { startApi, tokenOfUrl, type TestApi } from '../support/api.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { PROJECT_ROOT, run } from '../support/process.ts';

const README = process.env.PORTHOLE_TEST_README ?? join(PROJECT_ROOT, 'README.md');
const CLIENTS = /^(?:[A-Z_]+=\S+\s+)*(openstack|nova)\s/;

/** The logical lines (backslash continuations joined, comments dropped) of each `sh` block. */
function shellBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  for (const m of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    const lines: string[] = [];
    for (const line of m[1]!.replace(/\\\n\s*/g, '').split('\n')) {
      const text = line.trim();
      if (text !== '' && !text.startsWith('#')) lines.push(text);
    }
    blocks.push(lines);
  }
  return blocks;
}

/** Each client command with the `export` lines before it in its block, which it runs after. */
function clientCommands(markdown: string): { exports: string[]; command: string }[] {
  return shellBlocks(markdown).flatMap((lines) => {
    const out: { exports: string[]; command: string }[] = [];
    const exports: string[] = [];
    for (const line of lines) {
      if (/^export\s/.test(line)) exports.push(line);
      else if (CLIENTS.test(line)) out.push({ exports: [...exports], command: line });
    }
    return out;
  });
}

/** What the console behind a serial console URL says first, read through Porthole's WebSocket. */
async function demoSerialBanner(url: string): Promise<string> {
  const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
  let out = '';
  ws.on('message', (d: Buffer) => (out += d.toString('utf8')));
  ws.on('error', () => {});
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)));
    });
    return await eventually(`the console's prompt from ${url}`, () => out.endsWith('demo$ ') && out);
  } finally {
    ws.terminate();
  }
}

describe('the OpenStack client commands of the README', () => {
  const commands = clientCommands(readFileSync(README, 'utf8'));
  let gw: TestApi;
  let home: string;
  const serialPort = () => gw.gateway.proxies.get(serial.name)!.port;

  before(async () => {
    for (const file of ['/usr/bin/openstack', '/usr/bin/nova']) assert.ok(existsSync(file), `${file} is required (python3-openstackclient, python3-novaclient)`);
    home = tempDir('porthole-readme-clients-');
    gw = await startApi({ 'porthole.demo': 'true' });
  });
  after(async () => {
    await gw?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('shows openstack console url show (--novnc, --serial), server list, server show and nova get-vnc-console', () => {
    const text = commands.map((c) => c.command).join('\n');
    for (const wanted of [/openstack .*console url show --novnc/, /openstack .*console url show --serial/, /openstack .*server list/, /openstack .*server show/, /nova .*get-vnc-console/]) {
      assert.match(text, wanted, `${README} has no command matching ${wanted}`);
    }
  });

  for (const { exports, command } of commands) {
    it(`runs: ${command}`, async () => {
      const script = [...exports, command]
        .map((line) => line.replaceAll('127.0.0.1:8774', `127.0.0.1:${gw.apiPort}`).replaceAll('127.0.0.1:6080', `127.0.0.1:${gw.port}`).replaceAll('127.0.0.1:6083', `127.0.0.1:${serialPort()}`).replace(/\bSERVER\b/g, DEMO_SERVER_ID))
        .join('\n');
      const env = { PATH: '/usr/bin:/bin', HOME: home, LC_ALL: 'C.UTF-8' };
      const r = await run('/bin/sh', ['-ec', script], { env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Traceback|ERROR/, r.stderr);
      const serialUrl = /wss?:\/\/\S+?\?token=[0-9a-f-]{36}/.exec(r.stdout)?.[0];
      if (serialUrl !== undefined) {
        assert.ok(serialUrl.startsWith(`${gw.gateway.proxies.get(serial.name)!.baseUrl}?token=`), serialUrl);
        assert.match(await demoSerialBanner(serialUrl), /Porthole demo serial console/);
        return;
      }
      const url = /https?:\/\/\S+?token%3D[0-9a-f-]{36}/.exec(r.stdout)?.[0];
      if (url === undefined) {
        assert.ok(r.stdout.includes(DEMO_SERVER_ID), `the demo server's id is not in:\n${r.stdout}`);
        return;
      }
      assert.ok(url.startsWith(`${gw.gateway.novnc!.baseUrl}?path=%3Ftoken%3D`), url);
      const found = await gw.gateway.stores.tokens.lookup(tokenOfUrl(url));
      assert.ok(found.status === 'valid' && found.token.instanceUuid === DEMO_SERVER_ID, `${url}: ${found.status}`);
    });
  }
});
