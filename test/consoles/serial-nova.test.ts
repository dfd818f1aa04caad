/**
 * Porthole beside Nova's own nova-serialproxy (Debian nova-consoleproxy), on one nova.conf and
 * one cell database (the machine's MariaDB, Nova's own schema): a serial token minted by Nova's
 * own code as nova-compute mints it for get_serial_console (test/support/nova_tokens.py) opens
 * the same QEMU serial console on both, through the URL Nova hands out, `<base_url>?token=`,
 * with only the port changed. nova-serialproxy asks the compute host over RPC whether the
 * instance still owns the port; a stub nova-compute on the machine's RabbitMQ answers yes
 * (bench/nova_peer.py `compute`: Nova's own RPC server), in an exchange of this run only.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { accessUrl } from '../../src/consoles/console-url.ts';
import { accepting } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { NovaPeer, writeNovaConf } from '../support/nova.ts';
import { cleanEnv, PROJECT_ROOT } from '../support/process.ts';
import { haveQemu } from '../support/qemu.ts';
import { startSerialQemu, VERSION_ANSWER, type SerialQemu } from '../support/qemu-serial.ts';
import { freshMariadb } from '../support/stores.ts';
import { freePort } from '../support/xvnc.ts';

const NOVA_SERIALPROXY = '/usr/bin/nova-serialproxy';
const INSTANCE = '5e71a100-0000-4000-8000-0000000a0a0a';

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

const rabbit = await reachable(5672);
const skip = !existsSync(NOVA_SERIALPROXY) ? 'nova-consoleproxy is not installed'
  : !haveQemu ? 'qemu-system-x86 is not installed'
  : !rabbit ? 'nova-serialproxy needs RabbitMQ on 127.0.0.1:5672 for its validate_console_port RPC'
  : false;

/** Runs a process in a group of its own, so the forked children of nova-serialproxy go with it. */
function start(command: string, args: string[]): { proc: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const proc = spawn(command, args, { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  proc.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  return {
    proc,
    output: () => output,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      try {
        process.kill(-proc.pid!, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Opens `url`, waits for QEMU's prompt, asks its version, closes; returns the protocol and the version. */
async function infoVersion(url: string): Promise<{ protocol: string; version: string }> {
  const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
  let text = '';
  ws.on('message', (d: Buffer) => (text += d.toString('latin1')));
  const closed = new Promise((r) => ws.once('close', r));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  try {
    await eventually('the (qemu) prompt', () => text.endsWith('(qemu) '), 30_000);
    ws.send(Buffer.from('info version\r\n'));
    const m = await eventually('QEMU\'s version', () => VERSION_ANSWER.exec(text), 30_000);
    return { protocol: ws.protocol, version: m![1]!.trim() };
  } finally {
    ws.close();
    await closed;
  }
}

describe('Porthole beside nova-serialproxy', { skip }, () => {
  let db: Awaited<ReturnType<typeof freshMariadb>>;
  let dir: string;
  let nova: NovaPeer;
  let qemu: SerialQemu;
  let novaPort: number;
  let portholePort: number;
  const procs: Array<ReturnType<typeof start>> = [];

  before(async () => {
    [db, qemu] = await Promise.all([freshMariadb({ charset: 'utf8' }), startSerialQemu()]);
    dir = tempDir('porthole-nova-serial-');
    [novaPort, portholePort] = [await freePort(), await freePort()];
    const conf = join(dir, 'nova.conf');
    const run = `porthole-test-${randomUUID().slice(0, 8)}`;
    writeNovaConf(conf, `${db.url}?charset=utf8`, {
      // the stub compute and nova-serialproxy talk in an exchange of this run only
      DEFAULT: { transport_url: 'rabbit://guest:guest@127.0.0.1:5672/', control_exchange: run },
      serial_console: { serialproxy_host: '127.0.0.1', serialproxy_port: String(novaPort), base_url: `ws://127.0.0.1:${novaPort}/` },
      oslo_messaging_rabbit: { amqp_auto_delete: 'true', rabbit_transient_queues_ttl: '60' },
      oslo_concurrency: { lock_path: join(dir, 'lock') },
    });
    nova = new NovaPeer(conf);
    await nova.call({ op: 'sync' });
    await nova.call({ op: 'instance', uuid: INSTANCE, project: 'p1' });
    // nova_tokens.py puts its instances on compute-1: the stub answers as that host
    const compute = start('/usr/bin/python3', [join(PROJECT_ROOT, 'bench/nova_peer.py'), 'compute', conf, 'compute-1']);
    procs.push(compute);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stub nova-compute not ready: ${compute.output()}`)), 90_000);
      createInterface({ input: compute.proc.stdout! }).once('line', (line) => {
        clearTimeout(timer);
        if (line.includes('"ready"')) resolve();
        else reject(new Error(`stub nova-compute: ${line}`));
      });
    });
    const serialproxy = start(NOVA_SERIALPROXY, ['--config-file', conf]);
    const porthole = start(process.execPath, ['bin/nova-serialproxy.js', '--config-file', conf, '--serial_console-serialproxy_port', String(portholePort)]);
    procs.push(serialproxy, porthole);
    for (const [p, port] of [[serialproxy, novaPort], [porthole, portholePort]] as const) {
      p.proc.stdout!.resume();
      await eventually(`listening on ${port}`, async () => p.proc.exitCode === null ? accepting(port) : Promise.reject(new Error(`exited ${p.proc.exitCode}: ${p.output()}`)), 90_000);
    }
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    nova?.stop();
    await qemu?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens the console of a token Nova minted for get_serial_console on both, with Nova\'s URL form', async () => {
    const base = `ws://127.0.0.1:${novaPort}/`;
    const minted = await nova.call({ op: 'authorize', console_type: 'serial', instance: INSTANCE, host: '127.0.0.1', port: qemu.port, ttl: 600, access_url_base: base });
    const token = String(minted['token']);
    // the URL Nova hands out is the one Porthole forms from the same base
    assert.equal(minted['access_url'], `${base}?token=${token}`);
    assert.equal(accessUrl(base, 'serial', token), minted['access_url']);

    const viaNova = await infoVersion(String(minted['access_url']));
    const viaPorthole = await infoVersion(String(minted['access_url']).replace(`:${novaPort}/`, `:${portholePort}/`));
    assert.deepEqual(viaNova, { protocol: 'binary', version: qemu.version });
    assert.deepEqual(viaPorthole, viaNova);
  });

  it('refuses an unknown token on both before any byte of the console', async () => {
    for (const port of [novaPort, portholePort]) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${randomUUID()}`, ['binary']);
      ws.on('error', () => {});
      let bytes = 0;
      ws.on('message', (d: Buffer) => (bytes += d.length));
      await new Promise((r) => ws.once('close', r));
      assert.equal(bytes, 0, `port ${port === novaPort ? 'nova-serialproxy' : 'Porthole'}`);
    }
  });
});
