/**
 * The formats of the log, from createLogger as a daemon makes it: oslo.log's text line and its
 * time format (checked against Python's own time.strftime), JSON with use_json, debug on and
 * off, the program name and the log file's path as
 * oslo.log derives them, and no secret in any format.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.ts';
import { closeLogger, createLogger, logFilePath, programName } from '../../src/log.ts';
import { isSecretName, redactText } from '../../src/log/redact.ts';
import { strftime } from '../../src/log/strftime.ts';
import { capture, configOf, OSLO_LINE } from './support.ts';

function logOnce(settings: Record<string, string>, fn: (log: ReturnType<typeof createLogger>) => void): { out: string; err: string } {
  const out = capture();
  const err = capture();
  const log = createLogger(configOf(settings), { stdout: out, stderr: err });
  fn(log);
  closeLogger(log);
  return { out: out.text(), err: err.text() };
}

describe('log format', () => {
  it('writes oslo.log\'s text line: time.msecs pid LEVEL logger [-] message fields', () => {
    const before = Date.now();
    const { out } = logOnce({}, (log) => {
      log.info({ event: 'listening', part: 'api', port: 8774 }, 'compute API listening on 127.0.0.1:8774');
      log.child({ name: 'porthole.proxy' }).warn({ event: 'refused', code: 'TOKEN_UNKNOWN', tokenHash: '0123abcd' }, 'unknown token');
      log.child({ component: 'api' }).error('failed');
      log.fatal('giving up');
    });
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 4, out);
    const m = OSLO_LINE.exec(lines[0]!);
    assert.ok(m, lines[0]);
    assert.equal(m[3], String(process.pid));
    assert.equal(m[4], 'INFO');
    assert.equal(m[5], 'porthole');
    assert.equal(m[6], 'compute API listening on 127.0.0.1:8774 event=listening part=api port=8774');
    // the time is local time, as Python's logging prints it
    const t = new Date(`${m[1]!.replace(' ', 'T')}.${m[2]}`).getTime();
    assert.ok(t >= before - 1000 && t <= Date.now() + 1000, `${m[1]} is not now`);
    assert.match(lines[1]!, / \d+ WARNING porthole\.proxy \[-\] unknown token event=refused code=TOKEN_UNKNOWN tokenHash=0123abcd$/);
    assert.match(lines[2]!, / ERROR porthole\.api \[-\] failed$/);
    assert.match(lines[3]!, / CRITICAL porthole \[-\] giving up$/);
  });

  it('names the instance as Nova does and quotes a peer\'s words so they cannot forge a line', () => {
    const { out } = logOnce({}, (log) => {
      log.info({ event: 'session', instance: '6e4b2b7e-1c9f-4a8e-9d43-1f7e9c2a5b3d', reason: 'bye\n2024-01-01 00:00:00.000 1 INFO porthole [-] forged \u202e' }, 'session ended\nINFO fake');
    });
    assert.equal(out.split('\n').length, 2, out);
    assert.match(out, /\[-\] \[instance: 6e4b2b7e-1c9f-4a8e-9d43-1f7e9c2a5b3d\] session ended\\u000aINFO fake event=session reason="bye\\n2024-01-01 00:00:00\.000 1 INFO porthole \[-\] forged \\u202e"\n$/);
  });

  it('prints debug lines and an error\'s stack (each line prefixed as oslo.log does) only with debug', () => {
    const boom = new Error('backend went away');
    const quiet = logOnce({}, (log) => {
      log.debug('per-connection detail');
      log.error({ err: boom }, 'bug');
    }).out;
    assert.doesNotMatch(quiet, /per-connection detail/);
    assert.equal(quiet.trimEnd().split('\n').length, 1, quiet);
    assert.match(quiet, / ERROR porthole \[-\] bug err="backend went away"\n$/);

    for (const settings of [{ 'DEFAULT.debug': 'true' }, { 'porthole.log_level': 'debug' }] as Array<Record<string, string>>) {
      const loud = logOnce(settings, (log) => {
        log.debug('per-connection detail');
        log.error({ err: boom }, 'bug');
      }).out.trimEnd().split('\n');
      assert.match(loud[0]!, / DEBUG porthole \[-\] per-connection detail$/);
      assert.match(loud[1]!, / ERROR porthole \[-\] bug err="backend went away"$/);
      assert.match(loud[2]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ ERROR porthole Error: backend went away$/);
      assert.ok(loud.length > 3 && loud.slice(3).every((l) => / ERROR porthole {5}at /.test(l)), loud.join('\n'));
    }
  });

  it('formats log_date_format as Python\'s time.strftime does, in local time', () => {
    const all = '%Y-%m-%d %H:%M:%S|%y|%b|%B|%a|%A|%j|%p|%I|%Z|%z|%%|%e|%T|%F';
    const saved = process.env.TZ;
    try {
      for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
        process.env.TZ = tz;
        // %Z: Node's Intl knows the abbreviations of UTC and the US zones only (GMT+5:30, not IST)
        const format = tz === 'Asia/Kolkata' ? all.replace('%Z', '') : all;
        for (const ts of [1704459849, 1720000000, 1735689599, 951782400]) {
          const python = execFileSync('/usr/bin/python3', ['-c', 'import sys, time; print(time.strftime(sys.argv[1], time.localtime(int(sys.argv[2]))))', format, String(ts)], { env: { ...process.env, TZ: tz }, encoding: 'utf8' }).trimEnd();
          assert.equal(strftime(format, new Date(ts * 1000)), python, `${tz} ${ts}`);
        }
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
    const { out } = logOnce({ 'DEFAULT.log_date_format': '%d/%b/%Y:%H:%M:%S' }, (log) => log.info('x'));
    assert.match(out, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d\.\d{3} \d+ INFO porthole \[-\] x\n$/);
  });

  it('writes one JSON object per line with use_json, with oslo.log JSONFormatter\'s keys', () => {
    const { out } = logOnce({ 'DEFAULT.use_json': 'true', 'DEFAULT.debug': 'true' }, (log) => {
      log.child({ name: 'porthole.proxy' }).warn({ event: 'refused', code: 'ORIGIN_MISMATCH', client: '198.51.100.7' }, 'origin refused');
      log.error({ err: new Error('boom') }, 'bug');
    });
    const [a, b] = out.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(a!.message, 'origin refused');
    assert.equal(a!.name, 'porthole.proxy');
    assert.equal(a!.levelname, 'WARNING');
    assert.equal(a!.levelno, 30);
    assert.equal(a!.process, process.pid);
    assert.equal(a!.process_name, 'porthole');
    assert.match(String(a!.isotime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
    assert.match(String(a!.asctime), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.equal(typeof a!.created, 'number');
    assert.deepEqual(a!.extra, { event: 'refused', code: 'ORIGIN_MISMATCH', client: '198.51.100.7' });
    assert.equal(a!.traceback, null);
    assert.equal(b!.levelname, 'ERROR');
    assert.equal(b!.error_summary, 'boom');
    assert.ok(Array.isArray(b!.traceback) && (b!.traceback as string[])[0] === 'Error: boom');
  });

  it('masks tokens, passwords, keys and secrets in the text and JSON formats', () => {
    const secrets = ['0f5e2c9a-8b1d-4e3f-9a7c-6d5b4a3c2e1f', 'hunter2-password', 'jwt-signing-secret', 'private-key-material', 'api-key-value', 'redis-pw'];
    for (const json of ['false', 'true']) {
      const { out } = logOnce({ 'DEFAULT.use_json': json }, (log) => {
        log.info({ token: secrets[0], password: secrets[1], jwtSecret: secrets[2], key: secrets[3], nested: { apiKey: secrets[4] }, database: `redis://:${secrets[5]}@127.0.0.1:6379/0` }, `url http://h:6080/vnc_auto.html?path=%3Ftoken%3D${secrets[0]} and ?token=${secrets[0]}&x=1`);
        log.child({ password: secrets[1] }).warn('child binding');
      });
      for (const s of secrets) assert.ok(!out.includes(s), `${s} in the ${json === 'true' ? 'JSON' : 'text'} log:\n${out}`);
      assert.match(out, /\*\*\*/);
    }
  });

  it('knows which field names hold secrets', () => {
    for (const n of ['token', 'password', 'key', 'secret', 'jwtSecret', 'db_password', 'apiKey', 'X-Auth-Token', 'authorization']) assert.equal(isSecretName(n), true, n);
    for (const n of ['tokenHash', 'keyFile', 'monkey', 'event', 'code', 'client', 'workers', 'tokens']) assert.equal(isSecretName(n), false, n);
    assert.equal(redactText('postgresql://nova:s3cret@db/nova'), 'postgresql://nova:***@db/nova');
  });

  it('names the program after the Nova executable it was started as', () => {
    assert.equal(programName('/usr/bin/nova-novncproxy'), 'nova-novncproxy');
    assert.equal(programName('/opt/porthole/bin/nova-serialproxy.js'), 'nova-serialproxy');
    assert.equal(programName('/opt/porthole/bin/nova-spicehtml5proxy'), 'nova-spicehtml5proxy');
    assert.equal(programName('/opt/porthole/bin/porthole.js'), 'porthole');
    assert.equal(programName(undefined), 'porthole');
  });

  it('names a worker of [porthole] workers after its primary\'s program (it runs bin/porthole.js)', () => {
    assert.equal(programName('/opt/porthole/bin/porthole.js', { PORTHOLE_PROGRAM: 'nova-novncproxy' }), 'nova-novncproxy');
    assert.equal(programName('/opt/porthole/bin/porthole.js', { PORTHOLE_PROGRAM: 'anything-else' }), 'porthole');
  });

  it('finds the log file as oslo.log does (log_file, log_dir)', () => {
    assert.equal(logFilePath(configOf({}), 'nova-novncproxy'), undefined);
    assert.equal(logFilePath(configOf({ 'DEFAULT.log_file': '/var/log/nova/nova-novncproxy.log' }), 'x'), '/var/log/nova/nova-novncproxy.log');
    assert.equal(logFilePath(configOf({ 'DEFAULT.log_file': 'proxy.log', 'DEFAULT.log_dir': '/var/log/nova' }), 'x'), '/var/log/nova/proxy.log');
    assert.equal(logFilePath(configOf({ 'DEFAULT.log_file': '/abs.log', 'DEFAULT.log_dir': '/var/log/nova' }), 'x'), '/abs.log');
    assert.equal(logFilePath(configOf({ 'DEFAULT.log_dir': '/var/log/nova' }), 'nova-novncproxy'), '/var/log/nova/nova-novncproxy.log');
  });

  it('refuses an unknown syslog_log_facility with the names it takes', () => {
    assert.throws(() => createLogger(configOf({ 'DEFAULT.use_syslog': 'true', 'DEFAULT.syslog_log_facility': 'LOG_LOCAL9' }), { stdout: capture() }), (err: unknown) => isGatewayError(err) && err.code === 'CONFIG_INVALID' && /syslog_log_facility = LOG_LOCAL9: .*LOG_LOCAL7/.test(err.message));
  });
});
