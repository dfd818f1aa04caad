/**
 * use_journal and use_syslog: the datagrams Porthole sends, received on Unix datagram sockets the
 * test binds in place of journald's /run/systemd/journal/socket and syslog's /dev/log (no journald
 * or syslog daemon runs on this machine: the test plays the daemon, and parses what a daemon
 * would). And an output that is not there: one warning on standard error, the lines go there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeLogger, createLogger } from '../../src/log.ts';
import { eventually } from '../support/gateway.ts';
import { bindDatagram, capture, configOf, OSLO_LINE, parseJournal, type BoundSocket } from './support.ts';

const SECRET = '5d1c8e7a-3b2f-4c6d-9e8f-7a6b5c4d3e2f';

describe('log outputs over datagrams', () => {
  let dir: string;
  let journal: BoundSocket;
  let syslog: BoundSocket;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-log-'));
    journal = bindDatagram(join(dir, 'journal.sock'));
    syslog = bindDatagram(join(dir, 'log.sock'));
  });
  after(() => {
    journal.close();
    syslog.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the journal native fields, instead of standard output', async () => {
    journal.received.length = 0;
    const out = capture();
    const log = createLogger(configOf({ 'DEFAULT.use_journal': 'true' }), { stdout: out, journalSocket: join(dir, 'journal.sock'), program: 'nova-novncproxy' });
    log.child({ name: 'porthole.proxy' }).warn({ event: 'refused', code: 'TOKEN_EXPIRED', tokenHash: '89abcdef', reason: 'line one\nline two', token: SECRET }, 'expired token');
    log.info('plain');
    log.debug('not at info');
    await eventually('two journal entries', () => journal.received.length >= 2);
    closeLogger(log);
    assert.equal(out.text(), '', 'nothing on standard output');
    assert.equal(journal.received.length, 2);
    const f = parseJournal(journal.received[0]!);
    assert.equal(f.get('MESSAGE'), 'porthole.proxy [-] expired token event=refused code=TOKEN_EXPIRED tokenHash=89abcdef reason="line one\\nline two" token=***');
    assert.equal(f.get('PRIORITY'), '4');
    assert.equal(f.get('SYSLOG_IDENTIFIER'), 'nova-novncproxy');
    assert.equal(f.get('SYSLOG_PID'), String(process.pid));
    assert.equal(f.get('SYSLOG_FACILITY'), '1');
    assert.equal(f.get('LOGGER_NAME'), 'porthole.proxy');
    assert.equal(f.get('LOGGER_LEVEL'), 'WARNING');
    assert.equal(f.get('PORTHOLE_EVENT'), 'refused');
    assert.equal(f.get('PORTHOLE_CODE'), 'TOKEN_EXPIRED');
    assert.equal(f.get('PORTHOLE_TOKEN_HASH'), '89abcdef');
    // a value with a newline goes in the binary-safe form, whole
    assert.equal(f.get('PORTHOLE_REASON'), 'line one\nline two');
    assert.equal(f.get('PORTHOLE_TOKEN'), '***');
    for (const name of f.keys()) assert.match(name, /^[A-Z0-9][A-Z0-9_]{0,63}$/);
    assert.equal(parseJournal(journal.received[1]!).get('PRIORITY'), '6');
    for (const d of journal.received) assert.ok(!d.toString().includes(SECRET));
  });

  it('cuts a MESSAGE above 48 KiB (journald\'s LineMax)', async () => {
    journal.received.length = 0;
    const log = createLogger(configOf({ 'DEFAULT.use_journal': 'true' }), { stdout: capture(), journalSocket: join(dir, 'journal.sock') });
    log.info('x'.repeat(200 * 1024));
    await eventually('the entry', () => journal.received.length >= 1);
    closeLogger(log);
    const message = parseJournal(journal.received[0]!).get('MESSAGE')!;
    assert.ok(Buffer.byteLength(message) <= 48 * 1024 + 3 && message.endsWith('…'), `${Buffer.byteLength(message)} bytes`);
  });

  it('sends syslog datagrams with the facility and severity in <PRI>, besides standard output', async () => {
    syslog.received.length = 0;
    const out = capture();
    const log = createLogger(configOf({ 'DEFAULT.use_syslog': 'true', 'DEFAULT.syslog_log_facility': 'LOG_LOCAL3' }), { stdout: out, syslogSocket: join(dir, 'log.sock'), program: 'nova-novncproxy' });
    log.info({ event: 'listening', password: SECRET }, 'noVNC console proxy listening');
    log.error('failed');
    await eventually('two syslog datagrams', () => syslog.received.length >= 2);
    closeLogger(log);
    const [info, error] = syslog.received.map((b) => b.toString());
    // LOG_LOCAL3 is 19: 19 * 8 + 6 (info), + 3 (err)
    assert.match(info!, new RegExp(`^<158>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d nova-novncproxy\\[${process.pid}\\]: INFO porthole \\[-\\] noVNC console proxy listening event=listening password=\\*\\*\\*$`));
    assert.match(error!, /^<155>.* nova-novncproxy\[\d+\]: ERROR porthole \[-\] failed$/);
    // syslog is an extra copy: standard output has the lines too
    assert.equal(out.text().trimEnd().split('\n').filter((l) => OSLO_LINE.test(l)).length, 2, out.text());
    assert.ok(!out.text().includes(SECRET) && !info!.includes(SECRET));
  });

  it('sends JSON in the journal\'s MESSAGE and in syslog with use_json', async () => {
    journal.received.length = 0;
    syslog.received.length = 0;
    const log = createLogger(configOf({ 'DEFAULT.use_json': 'true', 'DEFAULT.use_journal': 'true', 'DEFAULT.use_syslog': 'true' }), { stdout: capture(), journalSocket: join(dir, 'journal.sock'), syslogSocket: join(dir, 'log.sock') });
    log.info({ event: 'x', secret: SECRET }, 'json');
    await eventually('both', () => journal.received.length >= 1 && syslog.received.length >= 1);
    closeLogger(log);
    const message = JSON.parse(parseJournal(journal.received[0]!).get('MESSAGE')!) as { message: string; extra: Record<string, unknown> };
    assert.equal(message.message, 'json');
    assert.deepEqual(message.extra, { event: 'x', secret: '***' });
    const body = syslog.received[0]!.toString().replace(/^<14>.*?\]: /, '');
    assert.equal((JSON.parse(body) as { message: string }).message, 'json');
    assert.ok(!syslog.received[0]!.toString().includes(SECRET));
  });

  it('without the journal\'s socket: one warning on standard error, the lines go there, nothing throws', () => {
    const out = capture();
    const err = capture();
    const log = createLogger(configOf({ 'DEFAULT.use_journal': 'true' }), { stdout: out, stderr: err, journalSocket: join(dir, 'no-such.sock') });
    log.info({ event: 'a' }, 'first');
    log.info({ event: 'b' }, 'second');
    closeLogger(log);
    const lines = err.text().trimEnd().split('\n');
    assert.equal(lines.length, 3, err.text());
    assert.match(lines[0]!, new RegExp(`WARNING porthole\\.log \\[-\\] cannot write the log to the journal \\(${dir}/no-such\\.sock\\): .*ENOENT.*; logging to standard error instead event=log_output_failed$`));
    assert.match(lines[1]!, / INFO porthole \[-\] first event=a$/);
    assert.match(lines[2]!, / INFO porthole \[-\] second event=b$/);
    assert.equal(out.text(), '');
  });

  it('without syslog\'s socket: one warning, the other output goes on', () => {
    const out = capture();
    const err = capture();
    const log = createLogger(configOf({ 'DEFAULT.use_syslog': 'true' }), { stdout: out, stderr: err, syslogSocket: join(dir, 'no-such.sock') });
    log.info('first');
    log.info('second');
    closeLogger(log);
    assert.equal(err.text().trimEnd().split('\n').length, 1, err.text());
    assert.match(err.text(), /cannot write the log to syslog .*; the other log outputs go on/);
    assert.equal(out.text().trimEnd().split('\n').length, 2, out.text());
  });
});
