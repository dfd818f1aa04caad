/**
 * The systemd files of deploy/systemd/, checked by systemd itself: `systemd-analyze verify` on
 * every unit and on the drop-in for Debian's nova-novncproxy.service (on top of Debian's own
 * unit, package nova-consoleproxy), and `systemd-sysusers` / `systemd-tmpfiles` applied to a
 * temporary root. Any line systemd prints about a unit fails the test.
 *
 * Running the units is not tested: this machine and CI have no running systemd (PID 1 is not
 * systemd, so `systemctl start` cannot work here). What the units rely on at run time,
 * sd_notify's READY/STOPPING/WATCHDOG and SIGHUP, is tested against the real daemon in
 * sd-notify.test.ts, and Debian's init script in debian-init.test.ts.
 *
 * `systemd-analyze verify` checks that each ExecStart= executable exists: the copies verified
 * here have `/usr/local/bin/NAME` (where `npm install -g` puts the package's executables)
 * replaced by the checkout's file for NAME in package.json's `bin`, so a unit that names an
 * executable the package does not install fails too.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPTIONS } from '../../src/config/options.ts';
import { PROJECT_ROOT, run } from '../support/process.ts';

const SYSTEMD_DIR = join(PROJECT_ROOT, 'deploy', 'systemd');
const DROP_IN = join(SYSTEMD_DIR, 'nova-novncproxy.service.d', 'porthole.conf');
const DEBIAN_UNIT = '/lib/systemd/system/nova-novncproxy.service';
const INSTALLED_BIN = '/usr/local/bin/';
const UNITS = readdirSync(SYSTEMD_DIR).filter((f) => f.endsWith('.service')).sort();

/** package.json's `bin`: executable name → file in the checkout. */
function packageBins(): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return new Map(Object.entries(pkg.bin).map(([name, file]) => [name, join(PROJECT_ROOT, file)]));
}

/** The unit's text with every /usr/local/bin/NAME replaced by the checkout's executable NAME. */
function withCheckoutBins(text: string): string {
  const bins = packageBins();
  return text.replace(/\/usr\/local\/bin\/([\w.-]+)/g, (_m, name: string) => {
    const file = bins.get(name);
    assert.ok(file, `${INSTALLED_BIN}${name} is not an executable of the package (package.json "bin" has ${[...bins.keys()].join(', ')})`);
    assert.ok(existsSync(file), `package.json's bin ${name} is ${file}, which does not exist`);
    return file;
  });
}

/** `systemd-analyze verify` on `unit`: its exit code and every line it printed. */
async function verify(unit: string): Promise<{ code: number; lines: string[] }> {
  const r = await run('systemd-analyze', ['verify', '--man=yes', unit], { timeoutMs: 60_000 });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { code: r.code, lines };
}

/** The `Key=value` settings of a unit or drop-in, last one winning, as systemd reads them. */
function settings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

function seconds(value: string): number {
  const m = /^(\d+)\s*(s|min)?$/.exec(value);
  assert.ok(m, `cannot read the time span ${value}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
}

describe('deploy/systemd', () => {
  let dir: string;

  before(() => {
    assert.ok(existsSync('/usr/bin/systemd-analyze'), 'systemd-analyze (Debian package systemd) is required');
    dir = mkdtempSync(join(tmpdir(), 'porthole-units-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has Porthole\'s unit and one for each Nova drop-in', () => {
    assert.deepEqual(UNITS, ['porthole-novncproxy.service', 'porthole-serialproxy.service', 'porthole-spicehtml5proxy.service', 'porthole.service']);
  });

  for (const unit of UNITS) {
    it(`systemd-analyze verify finds nothing to say about ${unit}`, async () => {
      const copy = join(dir, unit);
      writeFileSync(copy, withCheckoutBins(readFileSync(join(SYSTEMD_DIR, unit), 'utf8')));
      const { code, lines } = await verify(copy);
      assert.deepEqual(lines, [], `systemd-analyze verify ${unit}:\n${lines.join('\n')}`);
      assert.equal(code, 0);
    });
  }

  it('systemd-analyze verify finds nothing to say about Debian\'s nova-novncproxy.service with the drop-in', async () => {
    assert.ok(existsSync(DEBIAN_UNIT), `${DEBIAN_UNIT} (Debian package nova-consoleproxy) is required`);
    const unitDir = join(dir, 'debian');
    mkdirSync(join(unitDir, 'nova-novncproxy.service.d'), { recursive: true });
    copyFileSync(DEBIAN_UNIT, join(unitDir, 'nova-novncproxy.service'));
    writeFileSync(join(unitDir, 'nova-novncproxy.service.d', 'porthole.conf'), withCheckoutBins(readFileSync(DROP_IN, 'utf8')));
    const { code, lines } = await verify(join(unitDir, 'nova-novncproxy.service'));
    assert.deepEqual(lines, [], `systemd-analyze verify nova-novncproxy.service + porthole.conf:\n${lines.join('\n')}`);
    assert.equal(code, 0);
  });

  it('systemd-analyze verify reports a broken copy (the check can fail)', async () => {
    const copy = join(dir, 'broken.service');
    const text = withCheckoutBins(readFileSync(join(SYSTEMD_DIR, 'porthole.service'), 'utf8'));
    writeFileSync(copy, text.replace('Type=notify', 'Type=notifyy').replace('ProtectHome=yes', 'ProtectHomee=yes'));
    const { lines } = await verify(copy);
    assert.ok(lines.some((l) => /Failed to parse service type/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /Unknown key 'ProtectHomee'/.test(l)), lines.join('\n'));
    const missing = join(dir, 'missing.service');
    writeFileSync(missing, readFileSync(join(SYSTEMD_DIR, 'porthole.service'), 'utf8').replace('/usr/local/bin/porthole', join(dir, 'no-such-porthole')));
    const r = await verify(missing);
    assert.ok(r.lines.some((l) => /is not executable/.test(l)), r.lines.join('\n'));
  });

  const drainDefault = OPTIONS.porthole.drain_seconds.default as number;
  const files = [...UNITS.map((u) => join(SYSTEMD_DIR, u)), DROP_IN];
  for (const file of files) {
    const name = file.slice(SYSTEMD_DIR.length + 1);
    it(`${name}: Type=notify for the main process, a watchdog, a stop timeout above the drain, hardening`, () => {
      const s = settings(readFileSync(file, 'utf8'));
      assert.equal(s.get('Type'), 'notify');
      assert.equal(s.get('NotifyAccess'), 'main');
      assert.ok(seconds(s.get('WatchdogSec') ?? '0') > 0);
      assert.ok(seconds(s.get('TimeoutStopSec') ?? '0') > drainDefault, `TimeoutStopSec must be above [porthole] drain_seconds (${drainDefault})`);
      assert.equal(s.get('ExecReload'), '/bin/kill -HUP $MAINPID');
      assert.equal(s.get('ProtectSystem'), 'strict');
      assert.equal(s.get('NoNewPrivileges'), 'yes');
      assert.equal(s.get('RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6');
      assert.equal(s.get('CapabilityBoundingSet'), '');
      assert.equal(s.get('SystemCallFilter')?.startsWith('@system-service') || s.get('SystemCallFilter')?.startsWith('~'), true);
      // V8's JIT needs memory that was writable to become executable
      assert.equal(s.has('MemoryDenyWriteExecute'), false);
    });
  }

  it('porthole.service keeps its token store in its state directory, as user porthole', () => {
    const s = settings(readFileSync(join(SYSTEMD_DIR, 'porthole.service'), 'utf8'));
    assert.equal(s.get('User'), 'porthole');
    assert.equal(s.get('StateDirectory'), 'porthole');
    assert.equal(s.get('ConfigurationDirectory'), 'porthole');
    assert.equal(s.get('LogsDirectory'), 'porthole');
    // the config files name the database; without one the default is $STATE_DIRECTORY's file
    assert.equal(s.get('ExecStart'), '/usr/local/bin/porthole serve --config-dir /etc/porthole');
  });

  it('the Nova drop-ins run as nova with Debian\'s nova.conf and log file', () => {
    for (const kind of ['novncproxy', 'serialproxy', 'spicehtml5proxy']) {
      const s = settings(readFileSync(join(SYSTEMD_DIR, `porthole-${kind}.service`), 'utf8'));
      assert.equal(s.get('User'), 'nova');
      assert.equal(s.get('ExecStart'), `/usr/local/bin/nova-${kind} --config-file=/etc/nova/nova.conf --log-file=/var/log/nova/nova-${kind}.log`);
      assert.equal(s.get('Conflicts'), `nova-${kind}.service`);
    }
    const text = readFileSync(DROP_IN, 'utf8');
    // ExecStart= empties Debian's init-script ExecStart before giving Porthole's
    assert.match(text, /^ExecStart=\nExecStart=\/usr\/local\/bin\/nova-novncproxy --config-file=\/etc\/nova\/nova\.conf --log-file=\/var\/log\/nova\/nova-novncproxy\.log$/m);
  });

  it('sysusers.d and tmpfiles.d make the user porthole and its directories (in a temporary root)', async () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(root, 'etc', f), '');
    const users = await run('systemd-sysusers', [`--root=${root}`, join(SYSTEMD_DIR, 'porthole.sysusers')]);
    assert.equal(users.code, 0, users.stderr);
    const passwd = readFileSync(join(root, 'etc', 'passwd'), 'utf8');
    const entry = /^porthole:x:(\d+):(\d+):[^:]*:\/var\/lib\/porthole:\/usr\/sbin\/nologin$/m.exec(passwd);
    assert.ok(entry, passwd);
    const uid = Number(entry[1]);
    const gid = Number(entry[2]);
    const dirs = await run('systemd-tmpfiles', [`--root=${root}`, '--create', join(SYSTEMD_DIR, 'porthole.tmpfiles')]);
    assert.equal(dirs.code, 0, dirs.stderr);
    assert.equal(dirs.stderr, '');
    const state = statSync(join(root, 'var', 'lib', 'porthole'));
    assert.deepEqual([state.uid, state.gid, state.mode & 0o777], [uid, gid, 0o750]);
    const logs = statSync(join(root, 'var', 'log', 'porthole'));
    assert.deepEqual([logs.uid, logs.mode & 0o777], [uid, 0o750]);
    const conf = statSync(join(root, 'etc', 'porthole'));
    assert.deepEqual([conf.uid, conf.gid], [0, gid]);
  });
});
