import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
// @ts-expect-error: bin/launch.js is plain JavaScript without types
import { freshDist, STAMP } from '../../bin/launch.js';
import { accepting } from '../support/daemon.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { cleanEnv, PROJECT_ROOT, run } from '../support/process.ts';
import { freePort } from '../support/xvnc.ts';

const exe = (name: string, args: string[], env: Record<string, string> = {}) => run(process.execPath, [`bin/${name}.js`, ...args], { env: cleanEnv(env) });

const PACKAGE = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

describe('the nova-* executables', () => {
  it('are in package.json "bin", each a file that exists', () => {
    for (const name of ['porthole', 'nova-novncproxy', 'nova-serialproxy', 'nova-spicehtml5proxy']) {
      assert.equal(PACKAGE.bin[name], `bin/${name}.js`);
      assert.ok(existsSync(join(PROJECT_ROOT, PACKAGE.bin[name]!)), name);
    }
  });

  it('print the version with status 0, as oslo.config\'s --version', async () => {
    const runs = await Promise.all(['nova-novncproxy', 'nova-serialproxy', 'nova-spicehtml5proxy'].map((n) => exe(n, ['--version'])));
    for (const r of runs) assert.deepEqual(r, { code: 0, stdout: `porthole ${PACKAGE.version}\n`, stderr: '' });
  });

  it('nova-serialproxy takes its Nova options and serves the serial listener alone (serial.html, no API)', async () => {
    const dir = tempDir('porthole-nova-serialproxy-');
    const port = await freePort();
    const logFile = join(dir, 'nova-serialproxy.log');
    const conf = join(dir, 'nova.conf');
    writeFileSync(conf, ['[database]', `connection = sqlite:///${join(dir, 'nova.db')}`, ''].join('\n'));
    const args = [`--config-file=${conf}`, `--log-file=${logFile}`, '-d', '--nodaemon', '--use-json', '--web', dir, '--serial_console-serialproxy_host', '127.0.0.1', `--serial_console-serialproxy_port=${port}`];
    const child = spawn(process.execPath, ['bin/nova-serialproxy.js', ...args], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually('nova-serialproxy listening', async () => child.exitCode === null ? accepting(port) : Promise.reject(new Error(`exited ${child.exitCode}: ${output}`)), 60_000);
      const page = await fetch(`http://127.0.0.1:${port}/serial.html?token=00000000-0000-4000-8000-000000000000`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /<script type="module" src="\/porthole\/serial\.js"><\/script>/);
      assert.match(html, /"state":"unknown"/);
      // the noVNC page is not this listener's
      assert.equal((await fetch(`http://127.0.0.1:${port}/vnc_auto.html`)).status, 404);
      const log = await eventually('the listening line', () => {
        const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        return text.includes('serial console proxy listening') ? text : undefined;
      });
      assert.doesNotMatch(log, /noVNC console proxy listening|SPICE console proxy listening|Compute API/);
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nova-spicehtml5proxy takes its Nova options and serves the SPICE listener alone (spice_auto.html, no API)', async () => {
    const dir = tempDir('porthole-nova-spicehtml5proxy-');
    const port = await freePort();
    const logFile = join(dir, 'nova-spicehtml5proxy.log');
    const conf = join(dir, 'nova.conf');
    writeFileSync(conf, ['[database]', `connection = sqlite:///${join(dir, 'nova.db')}`, ''].join('\n'));
    const args = [`--config-file=${conf}`, `--log-file=${logFile}`, '-d', '--nodaemon', '--web', '/usr/share/spice-html5', '--spice-html5proxy_host', '127.0.0.1', '--spice-html5proxy_port', String(port)];
    const child = spawn(process.execPath, ['bin/nova-spicehtml5proxy.js', ...args], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually('nova-spicehtml5proxy listening', async () => child.exitCode === null ? accepting(port) : Promise.reject(new Error(`exited ${child.exitCode}: ${output}`)), 60_000);
      const page = await fetch(`http://127.0.0.1:${port}/spice_auto.html?token=00000000-0000-4000-8000-000000000000`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /import \* as SpiceHtml5 from '\.\/main\.js'/);
      assert.match(html, /"state":"unknown"/);
      // the noVNC page is not this listener's
      assert.equal((await fetch(`http://127.0.0.1:${port}/vnc_auto.html`)).status, 404);
      const log = await eventually('the listening line', () => {
        const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        return text.includes('SPICE console proxy listening') ? text : undefined;
      });
      assert.doesNotMatch(log, /noVNC console proxy listening|Compute API/);
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exit 2 on a typo in a Nova option, naming the closest', async () => {
    const r = await exe('nova-serialproxy', ['--serial_console-serialproxy_prot', '6083']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^nova-serialproxy: unknown option --serial_console-serialproxy_prot; did you mean --serial_console-serialproxy_port\?/);
  });

  it('nova-novncproxy serves with Debian\'s init script command line and warns once per unhonoured option ([DEFAULT] record is honoured now)', async () => {
    const dir = tempDir('porthole-nova-novncproxy-');
    const port = await freePort();
    const conf = join(dir, 'nova.conf');
    const logFile = join(dir, 'nova-novncproxy.log');
    writeFileSync(conf, [
      '[DEFAULT]', 'daemon = true', `record = ${join(dir, 'frames')}`,
      '[vnc]', 'novncproxy_host = 127.0.0.1', `novncproxy_port = ${port}`,
      '[database]', `connection = sqlite:///${join(dir, 'nova.db')}`, '',
    ].join('\n'));
    // the argv of /etc/init.d/nova-novncproxy (openstack-pkg-tools' init template), plus a debugger flag
    const child = spawn(process.execPath, ['bin/nova-novncproxy.js', `--config-file=${conf}`, `--log-file=${logFile}`, '--remote_debug-host', '10.0.0.9'], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually('nova-novncproxy listening', async () => child.exitCode === null ? accepting(port) : Promise.reject(new Error(`exited ${child.exitCode}: ${output}`)), 60_000);
      const log = await eventually('the warnings in the log file', () => {
        const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        return text.includes('[remote_debug] host') ? text : undefined;
      });
      for (const option of ['[DEFAULT] daemon = true', '[remote_debug] host = 10.0.0.9']) {
        assert.equal(log.split(option).length - 1, 1, `${option} warned once:\n${log}`);
      }
      assert.doesNotMatch(log, /\[DEFAULT\] record = .* is accepted but not honoured/);
      assert.match(log, new RegExp(`WARNING .*${conf.replaceAll('/', '\\/')}:2: \\[DEFAULT\\] daemon = true is accepted but not honoured`));
      assert.match(log, /flag --remote_debug-host: \[remote_debug\] host = 10\.0\.0\.9/);
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bin/launch.js', () => {
  /** A project tree with src/ and a dist/ built at `builtAt` (seconds since the epoch). */
  function tree(builtAt: number | undefined, sourceAt: number) {
    const root = tempDir('porthole-launch-');
    mkdirSync(join(root, 'src', 'cli'), { recursive: true });
    writeFileSync(join(root, 'src', 'cli', 'index.ts'), '');
    for (const p of ['src/cli/index.ts', 'src/cli', 'src']) utimesSync(join(root, p), sourceAt, sourceAt);
    if (builtAt !== undefined) {
      mkdirSync(join(root, 'dist'));
      writeFileSync(join(root, 'dist', STAMP), '');
      utimesSync(join(root, 'dist', STAMP), builtAt, builtAt);
    }
    return root;
  }

  for (const [what, builtAt, sourceAt, fresh] of [
    ['runs dist/ built after the last change to src/', 2000, 1000, true],
    ['runs the sources when a source changed after the build began', 1000, 2000, false],
    ['runs the sources when there is no dist/', undefined, 1000, false],
  ] as const) {
    it(what, () => {
      const root = tree(builtAt, sourceAt);
      try {
        assert.equal(freshDist(root, {}), fresh);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  it('sees a file added to a source directory (its directory\'s time moves)', () => {
    const root = tree(2000, 1000);
    try {
      writeFileSync(join(root, 'src', 'cli', 'new.ts'), '');
      utimesSync(join(root, 'src', 'cli', 'new.ts'), 1000, 1000);
      assert.equal(freshDist(root, {}), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('runs the sources when PORTHOLE_RUN_SOURCES=1', () => {
    const root = tree(2000, 1000);
    try {
      assert.equal(freshDist(root, { PORTHOLE_RUN_SOURCES: '1' }), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
