/**
 * The audit trail's outputs and its independence from its store:
 * - a gateway whose events table is gone (the store refuses every audit write) still opens,
 *   relays and closes consoles; every event is in the audit file; the failure is one warning in
 *   the main log (rate-limited), counted, never thrown;
 * - a store that never answers: recording stays immediate and the queue stays bounded (the
 *   oldest dropped and counted). A stand-in store here: no real server can be made to hang
 *   forever on command, and this is the queue's arithmetic, not a store's behaviour;
 * - `syslog` and `journal`: one datagram per event on sockets this test binds in place of
 *   /dev/log and journald's, identifier porthole-audit, facility LOG_AUTHPRIV, the JSON line as
 *   the message and, in the journal, each field as PORTHOLE_<NAME>.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { pino } from 'pino';
import { AuditTrail, MAX_QUEUED } from '../../src/ops/audit.ts';
import type { AuditEventStore } from '../../src/store/audit-events.ts';
import { assertFault, startApi, tokenOfUrl, websocketUrl, type TestApi } from '../support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { closeOf } from '../support/live.ts';
import { bindDatagram, parseJournal } from '../log/support.ts';

const SERVER = '5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716';

function auditLines(path: string): any[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

describe('audit trail: its store down', () => {
  let gw: TestApi;
  let backend: TestBackend;
  let auditPath: string;

  before(async () => {
    backend = await echoBackend();
    auditPath = join(tempDir('porthole-audit-'), 'audit.log');
    gw = await startApi({ 'porthole.audit_log': auditPath });
    await gw.addServer({ id: SERVER, name: 'db-1', projectId: 'p1', vnc: { host: '127.0.0.1', port: backend.port } });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it('does not stop consoles: they open, relay and close; the events are in the file; one warning', async () => {
    // the store refuses every audit write from now on, and nothing else
    await sql`DROP TABLE porthole_events`.execute(gw.gateway.stores.database!.db);
    for (let i = 0; i < 3; i++) {
      const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'alice:p1', headers: { 'OpenStack-API-Version': 'compute 2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
      assert.equal(r.status, 200, r.text);
      const { ws, messages } = await openRfbConsole(websocketUrl(gw, tokenOfUrl(r.body.remote_console.url)));
      const before = messages.length;
      ws.send(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x20]));
      await eventually('the echo backend answers through the relay', () => messages.length > before);
      const closed = closeOf(ws);
      ws.close(1000);
      await closed;
      await eventually('the trail tried the store', () => gw.gateway.audit.stats.storeFailures > 0);
    }
    const lines = await eventually('three session.closed in the file', () => {
      const l = auditLines(auditPath);
      return l.filter((x) => x.event === 'session.closed').length === 3 ? l : undefined;
    });
    assert.deepEqual(lines.filter((l) => l.event === 'token.minted').length, 3);
    const warnings = gw.logs.filter((l) => l.event === 'audit_store_failed');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!.msg, /audit events not written to .*consoles go on/);
    assert.equal(gw.gateway.audit.stats.storeDropped, 0, 'events are kept for a retry, not dropped');
    // the events API says the store failed, in Nova's words
    assertFault(await gw.call('GET', `/porthole/v1/events?server=${SERVER}`, { token: 'admin:admin' }), 503, /unavailable/);
  });
});

describe('audit trail: a store that never answers', () => {
  it('records at once, keeps at most MAX_QUEUED events waiting, counts the dropped', async () => {
    let appends = 0;
    const hung: AuditEventStore = { description: 'a hung store', append: () => (appends++, new Promise<void>(() => {})), query: async () => [], sweep: async () => 0 };
    const log = pino({ level: 'silent' });
    const trail = new AuditTrail({ target: null, store: hung, log, retentionDays: 30 });
    const extra = 500;
    const started = performance.now();
    for (let i = 0; i < MAX_QUEUED + extra; i++) trail.record({ event: 'token.refused', code: 'TOKEN_UNKNOWN', client: `192.0.2.${i % 250}:1` });
    assert.ok(performance.now() - started < 5000);
    assert.equal(trail.stats.recorded, MAX_QUEUED + extra);
    // one batch is with the store; the rest wait, bounded
    await eventually('a write started', () => appends === 1);
    assert.ok(trail.stats.storeDropped >= extra - 200 && trail.stats.storeDropped <= extra, `dropped ${trail.stats.storeDropped}`);
    await trail.close(50);
    assert.equal(trail.stats.recorded - trail.stats.storeDropped <= MAX_QUEUED + 200, true);
  });
});

describe('audit trail to syslog and the journal', () => {
  const dir = tempDir('porthole-audit-sock-');
  const syslog = bindDatagram(join(dir, 'log.sock'));
  const journal = bindDatagram(join(dir, 'journal.sock'));
  after(() => {
    syslog.close();
    journal.close();
  });

  it('sends one datagram per event as porthole-audit, facility authpriv', async () => {
    const log = pino({ level: 'silent' });
    const toSyslog = new AuditTrail({ target: 'syslog', store: null, log, retentionDays: 0, syslogSocket: join(dir, 'log.sock'), proxy: 'px:6080' });
    const toJournal = new AuditTrail({ target: 'journal', store: null, log, retentionDays: 0, journalSocket: join(dir, 'journal.sock'), proxy: 'px:6080' });
    const event = { event: 'session.killed' as const, session: 's-9', server: SERVER, token: 'abcd1234', actor: { user: 'admin', project: 'admin' } };
    toSyslog.record(event);
    toJournal.record(event);
    await eventually('both datagrams', () => syslog.received.length === 1 && journal.received.length === 1);
    const datagram = syslog.received[0]!.toString('utf8');
    // <PRI> = LOG_AUTHPRIV (10) * 8 + INFO (6)
    const m = /^<86>\w{3} [ \d]\d \d\d:\d\d:\d\d porthole-audit\[(\d+)\]: (\{.*\})$/.exec(datagram);
    assert.ok(m, datagram);
    assert.equal(Number(m[1]), process.pid);
    assert.deepEqual({ ...JSON.parse(m[2]!), time: undefined }, { time: undefined, v: 1, ...event, proxy: 'px:6080' });
    const fields = parseJournal(journal.received[0]!);
    assert.equal(fields.get('SYSLOG_IDENTIFIER'), 'porthole-audit');
    assert.equal(fields.get('SYSLOG_FACILITY'), '10');
    assert.equal(fields.get('PORTHOLE_EVENT'), 'session.killed');
    assert.equal(fields.get('PORTHOLE_TOKEN'), 'abcd1234');
    assert.equal(fields.get('PORTHOLE_SESSION'), 's-9');
    assert.deepEqual(JSON.parse(fields.get('PORTHOLE_ACTOR')!), { user: 'admin', project: 'admin' });
    assert.equal(JSON.parse(fields.get('MESSAGE')!).event, 'session.killed');
    await toSyslog.close();
    await toJournal.close();
  });
});
