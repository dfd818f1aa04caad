/**
 * Revocation by Nova itself, in Nova drop-in mode: a gateway on a Nova cell database built and
 * written by Debian's python3-nova (its schema migrations, `ConsoleAuthToken.authorize`) in a
 * MariaDB database of the test's own, with no `[porthole] connection`, so no store of Porthole's
 * own and no shared registry. Nova's `clean_console_auths_for_instance` deletes an instance's
 * tokens and tells no one; the proxy finds them gone before their expiry at its next heartbeat
 * and closes their consoles. `porthole sessions list` says the registry is off.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { closeOf, echo } from '../support/live.ts';
import { NovaPeer, writeNovaConf } from '../support/nova.ts';
import { porthole } from '../support/process.ts';
import { freshMariadb } from '../support/stores.ts';

const INSTANCE = '5e2d3c1f-9a8b-4c7d-8e6f-5a4b3c2d1e0f';
const OTHER = '6f3e4d2a-0b9c-4d8e-9f7a-6b5c4d3e2f1a';

describe('Nova drop-in: tokens Nova deletes close their live consoles (python3-nova, MariaDB)', () => {
  let db: Awaited<ReturnType<typeof freshMariadb>>;
  let dir: string;
  let nova: NovaPeer;
  let backend: TestBackend;
  let gw: TestGateway;
  let url: string;

  before(async () => {
    db = await freshMariadb({ charset: 'utf8' });
    dir = tempDir('porthole-nova-sessions-');
    url = `${db.url}?charset=utf8`;
    writeNovaConf(join(dir, 'nova.conf'), url);
    nova = new NovaPeer(join(dir, 'nova.conf'));
    await nova.call({ op: 'sync' });
    await nova.call({ op: 'instance', uuid: INSTANCE, project: 'p1' });
    await nova.call({ op: 'instance', uuid: OTHER, project: 'p1' });
    backend = await echoBackend();
    gw = await startGateway({ 'database.connection': url, 'porthole.session_heartbeat_interval': '0.5' });
  });
  after(async () => {
    await gw?.close();
    nova?.stop();
    await backend?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const consoleFor = async (instance: string) => {
    const minted = await nova.call({ op: 'authorize', instance, host: '127.0.0.1', port: backend.port, ttl: 600, access_url_base: gw.gateway.novnc!.baseUrl });
    return (await openRfbConsole(`ws://127.0.0.1:${gw.port}/websockify?token=${String(minted['token'])}`)).ws;
  };

  it('runs on Nova\'s database with no registry of its own', async () => {
    assert.equal(gw.gateway.stores.nova, true);
    assert.equal(gw.gateway.registry.shared, false);
    const r = await porthole(['sessions', 'list', '--database-connection', url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the live-sessions registry is off: \[database\] connection is a Nova database and \[porthole\] connection is not set/);
  });

  it('closes the consoles of an instance whose tokens Nova cleaned, at the next heartbeat, and no other', async () => {
    const doomed = await consoleFor(INSTANCE);
    const other = await consoleFor(OTHER);
    await echo(doomed, 'before Nova cleans');
    const closing = closeOf(doomed);
    await nova.call({ op: 'clean', instance: INSTANCE });
    assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
    await echo(other, 'the other instance\'s console');
    // this process's own sessions are still listed and killed through its admin API's registry
    const listed = await gw.gateway.registry.list();
    assert.deepEqual(listed.sessions.map((s) => s.instanceUuid), [OTHER]);
    const closed = closeOf(other);
    assert.equal(await gw.gateway.registry.kill(listed.sessions[0]!.id), 'closed');
    assert.deepEqual(await closed, { code: 1008, reason: 'console session killed by an administrator' });
  });
});
