/**
 * The audit trail over a full console life on a real gateway (SQLite store, an RFB echo backend,
 * the compute API over real HTTP with noauth2): a console URL minted by a project member, a
 * wrong token tried, the console opened, its token revoked by an admin through the API, the live
 * session closed. The audit file (`[porthole] audit_log`) holds one JSON line per event with who
 * did what; the events API answers the same lines filtered by server, time, token; no raw token
 * is in the audit file, the main log or the API's answer. The file is created 0600 and reopened
 * on SIGHUP (logrotate's `create` + `kill -HUP`).
 */
import assert from 'node:assert/strict';
import { readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '../../src/store/types.ts';
import { assertFault, startApi, tokenOfUrl, websocketUrl, type TestApi } from '../support/api.ts';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { closeOf } from '../support/live.ts';

const SERVER = '3f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
const OTHER = '7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d';

function auditLines(path: string): any[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

describe('audit trail: a console\'s life', () => {
  let gw: TestApi;
  let backend: TestBackend;
  let auditPath: string;
  let token: string;
  let sessionId: string;
  const wrongToken = '0f0e0d0c-0b0a-4909-8807-060504030201';

  before(async () => {
    backend = await echoBackend();
    auditPath = join(tempDir('porthole-audit-'), 'audit.log');
    gw = await startApi({ 'porthole.audit_log': auditPath });
    await gw.addServer({ id: SERVER, name: 'web-1', projectId: 'p1', vnc: { host: '127.0.0.1', port: backend.port } });
    await gw.addServer({ id: OTHER, name: 'web-2', projectId: 'p1', vnc: { host: '127.0.0.1', port: backend.port } });
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it('records minted, refused, used, opened, revoked and closed, with who and why', async () => {
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'alice:p1', headers: { 'OpenStack-API-Version': 'compute 2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    token = tokenOfUrl(r.body.remote_console.url);
    const prefix = hashToken(token).slice(0, 8);

    // a wrong token: refused before the upgrade, recorded with its code
    const wrong = await openRfbConsole(websocketUrl(gw, wrongToken)).then(
      () => assert.fail('a wrong token opened a console'),
      (err: Error) => err,
    );
    assert.match(String(wrong), /403/);

    const { ws } = await openRfbConsole(websocketUrl(gw, token));
    ws.send(Buffer.from('hello'));
    const live = await eventually('the session in the registry', async () => (await gw.gateway.registry.list()).sessions[0]);
    sessionId = live.id;

    const closing = closeOf(ws);
    const revoked = await gw.call('DELETE', `/porthole/v1/tokens/${token}`, { token: 'admin:admin' });
    assert.equal(revoked.status, 204, revoked.text);
    assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });

    const lines = await eventually('session.closed in the audit file', () => {
      const l = auditLines(auditPath);
      return l.some((x) => x.event === 'session.closed') ? l : undefined;
    });
    const proxy = `127.0.0.1:${gw.port}`;
    const by = (event: string) => lines.filter((l) => l.event === event);
    assert.deepEqual(lines.map((l) => l.event), ['token.minted', 'token.refused', 'token.used', 'session.opened', 'token.revoked', 'session.closed']);
    for (const l of lines) {
      assert.equal(l.v, 1);
      assert.ok(!Number.isNaN(Date.parse(l.time)) && l.time.endsWith('Z'), l.time);
      assert.equal(l.proxy, proxy);
    }
    const [minted] = by('token.minted');
    assert.deepEqual({ ...minted, time: undefined, expires_at: undefined }, { time: undefined, event: 'token.minted', v: 1, token: prefix, server: SERVER, console_type: 'novnc', actor: { user: 'alice', project: 'p1' }, expires_at: undefined, proxy });
    assert.ok(Date.parse(minted.expires_at) > Date.now());

    const [refused] = by('token.refused');
    assert.equal(refused.token, hashToken(wrongToken).slice(0, 8));
    assert.equal(refused.code, 'TOKEN_UNKNOWN');
    assert.match(refused.client, /^127\.0\.0\.1:\d+$/);

    for (const event of ['token.used', 'session.opened']) {
      const [l] = by(event);
      assert.deepEqual({ token: l.token, server: l.server, console_type: l.console_type, session: l.session }, { token: prefix, server: SERVER, console_type: 'novnc', session: sessionId });
      assert.match(l.client, /^127\.0\.0\.1:\d+$/);
    }
    const [rev] = by('token.revoked');
    assert.deepEqual({ token: rev.token, server: rev.server, actor: rev.actor, count: rev.count }, { token: prefix, server: SERVER, actor: { user: 'admin', project: 'admin' }, count: 1 });

    const [closed] = by('session.closed');
    assert.equal(closed.session, sessionId);
    assert.equal(closed.token, prefix);
    assert.equal(closed.reason, 'console access revoked');
    assert.ok(closed.bytes_from_client >= 5, `bytes_from_client ${closed.bytes_from_client}`);
    assert.ok(closed.bytes_from_backend > 0);
    assert.ok(Number.isInteger(closed.duration_ms) && closed.duration_ms >= 0);

    // the token itself is nowhere: not in the audit file, not in the main log
    const file = readFileSync(auditPath, 'utf8');
    assert.equal(file.includes(token), false, 'raw token in the audit file');
    assert.equal(file.includes(wrongToken), false, 'raw wrong token in the audit file');
    assert.equal(gw.rawLog.join('').includes(token), false, 'raw token in the main log');
  });

  it('keeps the file 0600', () => {
    assert.equal(statSync(auditPath).mode & 0o777, 0o600);
  });

  it('answers the same events from the store: by server, newest first, since a time, by token', async () => {
    await gw.gateway.audit.flushed();
    const all = await gw.call('GET', `/porthole/v1/events?server=${SERVER}`, { token: 'admin:admin' });
    assert.equal(all.status, 200, all.text);
    assert.equal(all.text.includes(token), false, 'raw token in the events API answer');
    const events: any[] = all.body.events;
    // the wrong token named no server: not this server's event
    assert.deepEqual(events.map((e) => e.event), ['session.closed', 'token.revoked', 'session.opened', 'token.used', 'token.minted']);
    assert.deepEqual(events.slice().reverse(), auditLines(auditPath).filter((l) => l.server === SERVER));

    const opened = events.find((e) => e.event === 'session.opened');
    const since = await gw.call('GET', `/porthole/v1/events?server=${SERVER}&since=${encodeURIComponent(opened.time)}&order=oldest`, { token: 'admin:admin' });
    assert.equal(since.status, 200, since.text);
    assert.deepEqual(since.body.events.map((e: any) => e.event).slice(-2), ['token.revoked', 'session.closed']);
    assert.ok(since.body.events.every((e: any) => Date.parse(e.time) >= Date.parse(opened.time)));
    assert.equal(since.body.events.some((e: any) => e.event === 'token.minted' && Date.parse(e.time) < Date.parse(opened.time)), false);

    // epoch seconds after everything: nothing
    const later = await gw.call('GET', `/porthole/v1/events?server=${SERVER}&since=${Math.ceil(Date.now() / 1000) + 60}`, { token: 'admin:admin' });
    assert.deepEqual(later.body, { events: [] });

    const byToken = await gw.call('GET', `/porthole/v1/events?token=${hashToken(token).slice(0, 8)}&event=session.opened,session.closed&limit=1`, { token: 'admin:admin' });
    assert.deepEqual(byToken.body.events.map((e: any) => e.event), ['session.closed']);
    const bySession = await gw.call('GET', `/porthole/v1/events?session=${sessionId}`, { token: 'admin:admin' });
    assert.deepEqual(bySession.body.events.map((e: any) => e.event), ['session.closed', 'session.opened', 'token.used']);
  });

  it('refuses members, bad filters and a whole token', async () => {
    assertFault(await gw.call('GET', '/porthole/v1/events', { token: 'alice:p1' }), 403, 'Policy doesn\'t allow porthole:admin to be performed.');
    assertFault(await gw.call('GET', '/porthole/v1/events'), 401, 'The request you have made requires authentication.');
    assertFault(await gw.call('GET', '/porthole/v1/events?server=nope', { token: 'admin:admin' }), 400, /server/);
    assertFault(await gw.call('GET', '/porthole/v1/events?since=yesterday', { token: 'admin:admin' }), 400, /since/);
    assertFault(await gw.call('GET', '/porthole/v1/events?limit=1001', { token: 'admin:admin' }), 400, /limit/);
    assertFault(await gw.call('GET', '/porthole/v1/events?event=token.stolen', { token: 'admin:admin' }), 400, /event/);
    assertFault(await gw.call('GET', '/porthole/v1/events?color=red', { token: 'admin:admin' }), 400, /color/);
    // a whole token in the query is refused by its length, before anything reads it
    const r = await gw.call('GET', `/porthole/v1/events?token=${wrongToken}`, { token: 'admin:admin' });
    assert.equal(r.status, 400);
    assert.equal(r.text.includes(wrongToken), false);
  });

  it('reopens the audit file on SIGHUP: a rotated file is left and a new 0600 one takes the next lines', async () => {
    const rotated = `${auditPath}.1`;
    renameSync(auditPath, rotated);
    process.emit('SIGHUP');
    const r = await gw.call('POST', `/v2.1/servers/${OTHER}/remote-consoles`, { token: 'alice:p1', headers: { 'OpenStack-API-Version': 'compute 2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    const fresh = auditLines(auditPath);
    assert.deepEqual(fresh.map((l) => [l.event, l.server]), [['token.minted', OTHER]]);
    assert.equal(statSync(auditPath).mode & 0o777, 0o600);
    assert.equal(auditLines(rotated).some((l) => l.server === OTHER), false);
  });
});

describe('audit trail without a store of Porthole\'s own', () => {
  it('answers the events API with 501 naming [porthole] connection', async () => {
    const gw = await startApi({ 'porthole.nova_database': 'true' });
    try {
      assertFault(await gw.call('GET', '/porthole/v1/events', { token: 'admin:admin' }), 501, /\[porthole\] connection/);
    } finally {
      await gw.close();
    }
  });
});

describe('audit trail: a kill and a single-use token', () => {
  it('records token.consumed on first use, and session.killed with the admin who killed it', async () => {
    const backend = await echoBackend();
    const auditPath = join(tempDir('porthole-audit-'), 'audit.log');
    const gw = await startApi({ 'porthole.audit_log': auditPath, 'porthole.single_use_tokens': 'true' });
    try {
      await gw.addServer({ id: SERVER, name: 'web-1', projectId: 'p1', vnc: { host: '127.0.0.1', port: backend.port } });
      const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'alice:p1', headers: { 'OpenStack-API-Version': 'compute 2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
      const token = tokenOfUrl(r.body.remote_console.url);
      const { ws } = await openRfbConsole(websocketUrl(gw, token));
      const live = await eventually('the session in the registry', async () => (await gw.gateway.registry.list()).sessions[0]);
      const closing = closeOf(ws);
      assert.equal((await gw.call('DELETE', `/porthole/v1/sessions/${live.id}`, { token: 'admin:admin' })).status, 204);
      await closing;
      const lines = await eventually('session.closed in the file', () => {
        const l = auditLines(auditPath);
        return l.some((x) => x.event === 'session.closed') ? l : undefined;
      });
      const prefix = hashToken(token).slice(0, 8);
      assert.deepEqual(lines.map((l) => l.event), ['token.minted', 'token.consumed', 'token.used', 'session.opened', 'session.killed', 'session.closed']);
      const consumed = lines.find((l) => l.event === 'token.consumed');
      assert.deepEqual({ token: consumed.token, server: consumed.server, reason: consumed.reason }, { token: prefix, server: SERVER, reason: 'first use' });
      const killed = lines.find((l) => l.event === 'session.killed');
      assert.deepEqual({ session: killed.session, token: killed.token, server: killed.server, actor: killed.actor }, { session: live.id, token: prefix, server: SERVER, actor: { user: 'admin', project: 'admin' } });
      assert.equal(readFileSync(auditPath, 'utf8').includes(token), false);
    } finally {
      await gw.close();
      await backend.close();
    }
  });
});
