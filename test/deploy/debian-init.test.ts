/**
 * Debian's own init script for nova-novncproxy (package nova-consoleproxy, built from
 * openstack-pkg-tools' template) running Porthole's `nova-novncproxy`, exactly as an operator
 * on a Debian Nova host would: /etc/default/nova-novncproxy from deploy/debian/ with DAEMON set
 * to the checkout's executable, NOVA_CONSOLE_PROXY_TYPE=novnc in /etc/default/nova-consoleproxy
 * (Debian ships spicehtml5, and the script then exits at once), a nova.conf in /etc/nova, and
 * `/etc/init.d/nova-novncproxy start` with an empty environment as `service` gives it. The
 * script runs start-stop-daemon as user nova in /var/lib/nova with
 * `--config-file=/etc/nova/nova.conf --log-file=/var/log/nova/nova-novncproxy.log`; the test
 * checks all of that on the running process, runs tempest's noVNC checks
 * (test/support/tempest_novnc.py) through it to a TigerVNC Xvnc, reads oslo.log-shaped lines in
 * the log file, and `stop` ends the process and frees the port.
 *
 * The same through Debian's nova-novncproxy.service (which runs this script's `systemd-start`)
 * or through the drop-in deploy/systemd/nova-novncproxy.service.d/porthole.conf is not tested:
 * no systemd runs on this machine or in CI. The unit files are checked by units.test.ts.
 *
 * The test changes the machine's /etc: it needs root, and every file it writes is put back as
 * it was (or removed) afterwards, the user nova and its directories too if it made them.
 */
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { accepting } from '../support/daemon.ts';
import { PROJECT_ROOT, run } from '../support/process.ts';
import { freePort, startXvnc, type Xvnc } from '../support/xvnc.ts';

const INIT_SCRIPT = '/etc/init.d/nova-novncproxy';
const NOVA_CONF = '/etc/nova/nova.conf';
const DEFAULT_DAEMON = '/etc/default/nova-novncproxy';
const DEFAULT_CONSOLEPROXY = '/etc/default/nova-consoleproxy';
const LOG_FILE = '/var/log/nova/nova-novncproxy.log';
const PID_FILE = '/var/run/nova/nova-novncproxy.pid';
const SERVER = '7e57c0de-0000-4000-8000-00000000d3b1';
// Debian's interpreter: python3-tempest is installed for it
const PYTHON = '/usr/bin/python3';
const TEMPEST = join(PROJECT_ROOT, 'test', 'support', 'tempest_novnc.py');
// what `service` leaves of the environment (env -i LANG PATH TERM)
const SERVICE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
/** oslo.log's default line: `2024-05-01 12:00:00.123 4242 INFO logger [-] message`. */
const OSLO_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (\d+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ /;

/** The checkout's nova-novncproxy, as package.json's `bin` names it. */
function portholeNovncproxy(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const file = pkg.bin['nova-novncproxy'];
  assert.ok(file, 'package.json has no bin nova-novncproxy');
  return join(PROJECT_ROOT, file);
}

/** A file of /etc as it was, to put back. */
interface Saved {
  readonly path: string;
  readonly before?: { text: Buffer; mode: number; uid: number; gid: number };
}

function save(path: string): Saved {
  if (!existsSync(path)) return { path };
  const st = statSync(path);
  return { path, before: { text: readFileSync(path), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } };
}

function restore(s: Saved): void {
  if (!s.before) {
    rmSync(s.path, { force: true });
    return;
  }
  writeFileSync(s.path, s.before.text);
  chmodSync(s.path, s.before.mode);
  chownSync(s.path, s.before.uid, s.before.gid);
}

function idOf(kind: 'u' | 'g', name: string): Promise<number> {
  return run('id', [`-${kind}`, name]).then((r) => {
    assert.equal(r.code, 0, `id -${kind} ${name}: ${r.stderr}`);
    return Number(r.stdout.trim());
  });
}

/** `porthole ...` as user nova, as an operator's script on the host would run it. */
function portholeAsNova(args: readonly string[]) {
  return run('runuser', ['-u', 'nova', '--', process.execPath, join(PROJECT_ROOT, 'bin', 'porthole.js'), ...args], { env: SERVICE_ENV, timeoutMs: 60_000 });
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

describe('Debian\'s /etc/init.d/nova-novncproxy running Porthole', () => {
  const saved: Saved[] = [];
  const made: string[] = [];
  let madeUser = false;
  let dir: string;
  let port: number;
  let xvnc: Xvnc | undefined;
  let logOffset = 0;
  let pid = 0;

  const script = (action: string) => run(INIT_SCRIPT, [action], { env: SERVICE_ENV, cwd: '/', timeoutMs: 60_000 });

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test runs Debian\'s init script and writes /etc: it needs root (as CI runs it)');
    assert.ok(existsSync(INIT_SCRIPT), `${INIT_SCRIPT} (Debian package nova-consoleproxy) is required`);
    const daemon = portholeNovncproxy();
    assert.ok(existsSync(daemon), `${daemon} does not exist`);

    if ((await run('id', ['nova'])).code !== 0) {
      const r = await run('useradd', ['--system', '--user-group', '--home-dir', '/var/lib/nova', '--shell', '/usr/sbin/nologin', 'nova']);
      assert.equal(r.code, 0, r.stderr);
      madeUser = true;
    }
    const uid = await idOf('u', 'nova');
    const gid = await idOf('g', 'nova');
    for (const d of ['/var/lib/nova', '/var/log/nova', '/etc/nova']) {
      if (existsSync(d)) continue;
      mkdirSync(d, { recursive: true });
      chownSync(d, uid, gid);
      made.push(d);
    }
    if (existsSync(LOG_FILE)) logOffset = statSync(LOG_FILE).size;
    else made.push(LOG_FILE);

    // the token database, in a directory of nova's (SQLite writes a journal beside the file)
    dir = mkdtempSync(join(tmpdir(), 'porthole-debian-init-'));
    chmodSync(dir, 0o750);
    chownSync(dir, uid, gid);
    port = await freePort();

    for (const f of [NOVA_CONF, DEFAULT_DAEMON, DEFAULT_CONSOLEPROXY]) saved.push(save(f));
    writeFileSync(NOVA_CONF, [
      '[DEFAULT]',
      'debug = false',
      '[vnc]',
      'novncproxy_host = 127.0.0.1',
      `novncproxy_port = ${port}`,
      `novncproxy_base_url = http://127.0.0.1:${port}/vnc_auto.html`,
      '[database]',
      `connection = sqlite:///${join(dir, 'nova.db')}`,
      '[porthole]',
      // below the 30 s the script's stop waits before SIGKILL (README)
      'drain_seconds = 25',
      '',
    ].join('\n'));
    // as Debian's nova-common has it: root:nova 0640
    chmodSync(NOVA_CONF, 0o640);
    chownSync(NOVA_CONF, 0, gid);
    // the repository's /etc/default/nova-novncproxy with DAEMON at the checkout
    const defaults = readFileSync(join(PROJECT_ROOT, 'deploy', 'debian', 'default-nova-novncproxy'), 'utf8');
    assert.match(defaults, /^DAEMON=\/usr\/local\/bin\/nova-novncproxy$/m);
    writeFileSync(DEFAULT_DAEMON, defaults.replace(/^DAEMON=.*$/m, `DAEMON=${daemon}`));
    const consoleproxy = saved[2]!.before?.text.toString() ?? '';
    writeFileSync(DEFAULT_CONSOLEPROXY, `${consoleproxy.replace(/^NOVA_CONSOLE_PROXY_TYPE=.*$/m, '')}\nNOVA_CONSOLE_PROXY_TYPE=novnc\n`);

    // Nova's table in the SQLite file (a real deployment has Nova's cell database)
    const migrated = await portholeAsNova(['db', 'migrate', '--config-file', NOVA_CONF]);
    assert.equal(migrated.code, 0, `porthole db migrate: ${migrated.stdout}${migrated.stderr}`);
    xvnc = await startXvnc({ colour: '#305070' });
  });

  after(async () => {
    if (pid && alive(pid)) {
      await script('stop');
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await xvnc?.stop();
    for (const s of saved) restore(s);
    for (const m of made.reverse()) rmSync(m, { recursive: true, force: true });
    if (madeUser) await run('userdel', ['nova']);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('start runs Porthole as nova, in /var/lib/nova, with Debian\'s nova.conf and log file', async () => {
    const started = await script('start');
    assert.equal(started.code, 0, `${INIT_SCRIPT} start: ${started.stdout}${started.stderr}`);
    assert.ok(existsSync(PID_FILE), `no ${PID_FILE}: the script did not start anything (${started.stdout}${started.stderr})`);
    pid = Number(readFileSync(PID_FILE, 'utf8').trim());
    const deadline = Date.now() + 60_000;
    while (!(await accepting(port))) {
      const log = existsSync(LOG_FILE) ? readFileSync(LOG_FILE, 'utf8').slice(logOffset) : '';
      assert.ok(alive(pid), `the daemon (pid ${pid}) exited before listening on ${port}; its log:\n${log}`);
      assert.ok(Date.now() < deadline, `the daemon did not listen on ${port} within 60 s; its log:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = await idOf('u', 'nova');
    assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s`, 'm'), 'not running as nova');
    assert.equal(readlinkSync(`/proc/${pid}/cwd`), '/var/lib/nova');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('--config-file=/etc/nova/nova.conf'), argv.join(' '));
    assert.ok(argv.includes(`--log-file=${LOG_FILE}`), argv.join(' '));
    assert.ok(argv.includes(portholeNovncproxy()), argv.join(' '));
  });

  it('serves tempest\'s test_novnc and test_novnc_bad_token to a TigerVNC Xvnc', async () => {
    assert.ok(pid && alive(pid), 'the daemon is not running');
    const minted = await portholeAsNova(['token', 'create', '--config-file', NOVA_CONF, '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', String(xvnc!.port), '--json']);
    assert.equal(minted.code, 0, `porthole token create: ${minted.stdout}${minted.stderr}`);
    const { url, token } = JSON.parse(minted.stdout) as { url: string; token: string };
    assert.ok(url.startsWith(`http://127.0.0.1:${port}/vnc_auto.html?path=`), url);
    const tempest = await run(PYTHON, [TEMPEST, url], { timeoutMs: 60_000 });
    assert.match(tempest.stdout, /^PASS test_novnc$/m, `${tempest.stdout}${tempest.stderr}`);
    assert.match(tempest.stdout, /^PASS test_novnc_bad_token$/m, `${tempest.stdout}${tempest.stderr}`);
    const log = readFileSync(LOG_FILE, 'utf8').slice(logOffset);
    assert.ok(!log.includes(token), 'the token is in the log file');
  });

  it('writes oslo.log-shaped lines to /var/log/nova/nova-novncproxy.log', (t) => {
    const lines = readFileSync(LOG_FILE, 'utf8').slice(logOffset).split('\n').filter((l) => l !== '');
    assert.ok(lines.length > 0, `nothing in ${LOG_FILE}`);
    t.diagnostic(lines.slice(0, 3).join('\n'));
    const ours = lines.filter((l) => OSLO_LINE.exec(l)?.[1] === String(pid));
    assert.ok(ours.length > 0, `no line of pid ${pid} in oslo.log's shape:\n${lines.slice(0, 10).join('\n')}`);
    const odd = lines.filter((l) => !OSLO_LINE.test(l) && !/^\s/.test(l));
    assert.deepEqual(odd, [], 'lines not in oslo.log\'s shape');
    // the log file is nova's (the daemon runs as nova and created or appended it)
    assert.equal(statSync(LOG_FILE).uid, Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]));
  });

  it('stop ends the process, removes the pid file and frees the port', async () => {
    assert.ok(pid && alive(pid), 'the daemon is not running');
    const stopped = await script('stop');
    assert.equal(stopped.code, 0, `${INIT_SCRIPT} stop: ${stopped.stdout}${stopped.stderr}`);
    assert.equal(alive(pid), false, `pid ${pid} still runs`);
    assert.equal(existsSync(PID_FILE), false);
    assert.equal(await accepting(port), false, `port ${port} still accepts`);
    const log = readFileSync(LOG_FILE, 'utf8').slice(logOffset);
    assert.match(log, /SIGTERM/, 'the log does not say that SIGTERM stopped it');
  });
});
