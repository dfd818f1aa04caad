/**
 * `porthole serve` as a service manager runs it (node bin/porthole.js): oslo.log's text lines on
 * standard output by default; with log_file, its lines in the file, and after logrotate's move
 * and a SIGHUP, in a new file; with `[porthole] workers = 2`, each process's lines (told apart
 * by their pid) in the one file, and SIGHUP to the primary reopens it in the workers too.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { accepting } from '../support/daemon.ts';
import { eventually } from '../support/gateway.ts';
import { cleanEnv, OTHER_CONSOLES_ON_LOOPBACK, PROJECT_ROOT } from '../support/process.ts';
import { freePort } from '../support/xvnc.ts';
import { OSLO_LINE } from './support.ts';

interface Serve {
  readonly proc: ChildProcess;
  readonly apiPort: number;
  out(): string;
  stop(): Promise<void>;
}

async function serve(dir: string, extra: string[]): Promise<Serve> {
  const [consolePort, apiPort] = [await freePort(), await freePort()];
  const args = ['bin/porthole.js', 'serve', ...OTHER_CONSOLES_ON_LOOPBACK, '--vnc-novncproxy_host', '127.0.0.1', '--vnc-novncproxy_port', String(consolePort), '--osapi_compute_listen', '127.0.0.1', '--osapi_compute_listen_port', String(apiPort), '--database-connection', `sqlite:///${join(dir, 'p.db')}`, '--web', '/nonexistent', '--cert', '/nonexistent', ...extra];
  const proc = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually('porthole serve to listen', async () => proc.exitCode !== null || ((await accepting(consolePort)) && (await accepting(apiPort))), 30_000);
  assert.equal(proc.exitCode, null, out);
  return {
    proc,
    apiPort,
    out: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGINT');
      await exited;
    },
  };
}

/** An API request, which the API logs at info (`api request`). */
function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // a new connection each time (no keep-alive), so the primary hands each to the next worker
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { 'X-Auth-Token': 'admin:admin' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

describe('porthole serve\'s log', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-daemon-log-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes oslo.log\'s text lines on standard output, and says once that log_config_append is not read', async () => {
    const s = await serve(dir, ['--log_config_append', '/etc/nova/logging.conf']);
    try {
      await eventually('the API listening line', () => /compute API listening/.test(s.out()));
      const lines = s.out().split('\n').filter((l) => /^\d{4}-/.test(l));
      assert.ok(lines.length >= 2, s.out());
      for (const l of lines) {
        const m = OSLO_LINE.exec(l);
        assert.ok(m, l);
        assert.equal(m[3], String(s.proc.pid));
      }
      assert.equal(lines.filter((l) => /log_config_append/.test(l) && / WARNING /.test(l)).length, 1, lines.join('\n'));
      assert.ok(lines.some((l) => / INFO porthole \[-\] compute API listening on 127\.0\.0\.1:\d+ event=listening part=api /.test(l)), lines.join('\n'));
    } finally {
      await s.stop();
    }
  });

  it('writes to log_file, and to a new file after logrotate\'s move and SIGHUP', async () => {
    const path = join(dir, 'serve.log');
    const s = await serve(dir, ['--log_file', path]);
    try {
      await eventually('the listening lines in the file', () => /compute API listening/.test(read(path)));
      assert.equal(s.out().split('\n').filter((l) => OSLO_LINE.test(l)).length, 0, 'no log line on standard output');
      renameSync(path, `${path}.1`);
      s.proc.kill('SIGHUP');
      await eventually('a request logged in the new file', async () => {
        await get(s.apiPort, '/v2.1');
        return read(path).includes('api request');
      });
      assert.ok(read(path).split('\n').filter(Boolean).every((l) => OSLO_LINE.test(l)), read(path));
      assert.equal(s.proc.exitCode, null);
    } finally {
      await s.stop();
    }
  });

  it('with two workers: each process\'s lines in the file, whole, and SIGHUP to the primary reopens it in the workers', async () => {
    const path = join(dir, 'workers.log');
    const s = await serve(dir, ['--log_file', path, '--porthole-workers', '2']);
    try {
      await eventually('both workers listening', () => /all 2 workers listen/.test(read(path)), 30_000);
      const pids = () => new Set(read(path).split('\n').filter(Boolean).map((l) => OSLO_LINE.exec(l)?.[3] ?? 'not a log line'));
      await eventually('lines of the primary and both workers', () => pids().size >= 3, 10_000);
      assert.ok(!pids().has('not a log line'), read(path));
      renameSync(path, `${path}.1`);
      s.proc.kill('SIGHUP');
      // round robin: a few requests reach both workers, whose API lines then land in the new file
      await eventually('API lines of both workers in the new file', async () => {
        await get(s.apiPort, '/v2.1');
        const workers = new Set(read(path).split('\n').filter((l) => l.includes('api request')).map((l) => OSLO_LINE.exec(l)?.[3]));
        return workers.size >= 2;
      }, 20_000).catch((err: Error) => assert.fail(`${err.message}\nnew file:\n${read(path)}\nmoved file:\n${read(`${path}.1`)}\n${s.out()}`));
      assert.ok(read(path).split('\n').filter(Boolean).every((l) => OSLO_LINE.test(l)), read(path));
    } finally {
      await s.stop();
    }
  });
});
