/**
 * The live-sessions registry and revocation of live sessions, on every store of this machine
 * (an SQLite file, PostgreSQL, MariaDB, Redis), each in a fresh database or key prefix: two
 * gateways in this process share the store as two proxies would, a console session is held by
 * one of them, and the other one lists it, revokes its token or all tokens of its server, or
 * kills it; the holder closes it (WebSocket 1008 and the reason). A token deleted behind
 * Porthole's back (as Nova's `clean_console_auths_for_instance` does) closes its sessions at the
 * next heartbeat; a token that merely expires closes nothing (Nova checks tokens at connect
 * only). On SQLite also the drain: a closing gateway stops accepting, lets its session run, then
 * closes it with 1001.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { WebSocket } from 'ws';
import { echoBackend, openRfbConsole, type TestBackend } from '../support/backends.ts';
import { eventually, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { closeOf, echo } from '../support/live.ts';
import { freshMariadb, freshPostgres, freshRedis } from '../support/stores.ts';
import { hashToken } from '../../src/store/types.ts';

const SERVER_1 = '7a1b2c3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d';
const SERVER_2 = '8b2c3d4e-5f6a-4b7c-9d8e-2f3a4b5c6d7e';

interface Target {
  readonly settings: Record<string, string>;
  /** Deletes a token's row as Nova does, telling no one. */
  deleteBehindTheBack(token: string): Promise<void>;
  cleanup(): Promise<void>;
}

function registryContract(name: string, setup: () => Promise<Target>, opts: { expiry?: boolean; drain?: boolean } = {}): void {
  describe(`live sessions across two proxies on ${name}`, () => {
    let target: Target;
    let backend: TestBackend;
    let a: TestGateway;
    let b: TestGateway;
    const open: WebSocket[] = [];

    const session = async (on: TestGateway, instanceUuid = SERVER_1, ttl = 600) => {
      const { token } = await a.mint({ host: '127.0.0.1', port: backend.port, instanceUuid, ttl });
      const { ws } = await openRfbConsole(`ws://127.0.0.1:${on.port}/websockify?token=${token}`);
      open.push(ws);
      const id = await eventually('the session in the registry', async () => (await a.gateway.registry.list()).sessions.find((s) => s.instanceUuid === instanceUuid && s.proxyId === on.gateway.tracker!.proxy.id && !seen.has(s.id))?.id);
      seen.add(id);
      return { token, ws, id };
    };
    const seen = new Set<string>();

    before(async () => {
      target = await setup();
      backend = await echoBackend();
      const settings = { 'porthole.session_heartbeat_interval': '0.5', ...target.settings };
      a = await startGateway(settings);
      b = await startGateway(settings);
    });
    after(async () => {
      for (const ws of open) ws.terminate();
      await a?.close();
      await b?.close();
      await backend?.close();
      await target?.cleanup();
    });

    it('lists the sessions and proxies of both, from either, with the token\'s log id only', async () => {
      const s = await session(b);
      const listing = await eventually('both proxies listed', async () => {
        const l = await a.gateway.registry.list();
        return l.proxies.length === 2 ? l : undefined;
      });
      assert.deepEqual(new Set(listing.proxies.map((p) => p.id)), new Set([a.gateway.tracker!.proxy.id, b.gateway.tracker!.proxy.id]));
      const record = listing.sessions.find((x) => x.id === s.id)!;
      assert.equal(record.tokenLogId, hashToken(s.token).slice(0, 8));
      assert.equal(record.instanceUuid, SERVER_1);
      assert.match(record.backend, /^127\.0\.0\.1:\d+$/);
      assert.equal(JSON.stringify(listing).includes(s.token), false);
      assert.equal(JSON.stringify(listing).includes(hashToken(s.token)), false);
      await echo(s.ws, 'x'.repeat(1000));
      const counted = await eventually('byte counts written at a heartbeat', async () => (await b.gateway.registry.list()).sessions.find((x) => x.id === s.id && x.bytesFromClient >= 1000 && x.bytesFromBackend >= 1000));
      assert.ok(counted.updatedAt >= counted.startedAt);
      s.ws.close();
      await eventually('the ended session gone from the registry', async () => !(await a.gateway.registry.list()).sessions.some((x) => x.id === s.id));
    });

    it('closes a live session on the other proxy when its token is revoked', async () => {
      const s = await session(b);
      const other = await session(b, SERVER_1);
      const closing = closeOf(s.ws);
      assert.equal(await a.gateway.stores.tokens.revoke(s.token), true);
      assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
      await echo(other.ws, 'still here');
      other.ws.close();
    });

    it('closes every live session of a server when all its tokens are revoked, and no other', async () => {
      const one = await session(b, SERVER_2);
      const two = await session(a, SERVER_2);
      const bystander = await session(b, SERVER_1);
      const closings = [closeOf(one.ws), closeOf(two.ws)];
      assert.equal(await a.gateway.stores.tokens.revokeByInstance(SERVER_2), 2);
      for (const c of await Promise.all(closings)) assert.deepEqual(c, { code: 1008, reason: 'console access revoked' });
      await echo(bystander.ws, 'unaffected');
      bystander.ws.close();
    });

    it('kills a session held by the other proxy', async () => {
      const s = await session(b);
      const closing = closeOf(s.ws);
      assert.equal(await a.gateway.registry.kill(s.id), 'closed');
      assert.deepEqual(await closing, { code: 1008, reason: 'console session killed by an administrator' });
      assert.equal(await a.gateway.registry.kill(s.id), 'unknown');
      assert.equal(await a.gateway.registry.kill('no-such-session'), 'unknown');
    });

    it('closes a session whose token was deleted behind Porthole\'s back, at the next heartbeat', async () => {
      const s = await session(b);
      const closing = closeOf(s.ws);
      await target.deleteBehindTheBack(s.token);
      assert.deepEqual(await closing, { code: 1008, reason: 'console access revoked' });
    });

    if (opts.expiry) {
      it('keeps a session whose token expires (Nova checks tokens at connect only)', async () => {
        // 2 s, not 1: expiry is in whole seconds, so a 1-second token minted late in a second is
        // already expired a few milliseconds later, before its console connects
        const s = await session(b, SERVER_1, 2);
        await new Promise((r) => setTimeout(r, 2500));
        await a.gateway.stores.tokens.sweepExpired();
        // several heartbeats, each of which looks for deleted tokens
        await new Promise((r) => setTimeout(r, 2000));
        await echo(s.ws, 'after expiry');
        assert.ok((await a.gateway.registry.list()).sessions.some((x) => x.id === s.id));
        s.ws.close();
      });
    }

    if (opts.drain) {
      it('drains: stops accepting, lets the session run, then closes it with 1001 and leaves the registry', async () => {
        const s = await session(b);
        const closing = closeOf(s.ws);
        const port = b.port;
        const closed = b.gateway.close({ drainMs: 1500 });
        await eventually('the listener closed', () => new Promise<boolean>((resolve) => {
          const c = connect(port, '127.0.0.1');
          c.once('connect', () => (c.destroy(), resolve(false)));
          c.once('error', () => resolve(true));
        }));
        const draining = await eventually('the proxy shown draining', async () => (await a.gateway.registry.list()).proxies.find((p) => p.id === b.gateway.tracker!.proxy.id && p.draining));
        assert.ok(draining);
        await echo(s.ws, 'during the drain');
        assert.deepEqual(await closing, { code: 1001, reason: 'proxy shutting down' });
        await closed;
        const after = await a.gateway.registry.list();
        assert.deepEqual(after.proxies.map((p) => p.id), [a.gateway.tracker!.proxy.id]);
        assert.equal(after.sessions.some((x) => x.proxyId === b.gateway.tracker!.proxy.id), false);
      });

      it('ends a drain at once when closed again without one', async () => {
        const c = await startGateway({ 'porthole.session_heartbeat_interval': '0.5', ...target.settings });
        try {
          const s = await session(c);
          const closing = closeOf(s.ws);
          const draining = c.gateway.close({ drainMs: 60_000 });
          await eventually('the proxy draining', async () => (await a.gateway.registry.list()).proxies.some((p) => p.id === c.gateway.tracker!.proxy.id && p.draining));
          await c.gateway.close();
          await draining;
          assert.deepEqual(await closing, { code: 1001, reason: 'proxy shutting down' });
        } finally {
          await c.close();
        }
      });
    }
  });
}

registryContract('SQLite', async () => {
  const dir = tempDir('porthole-sessions-');
  const path = join(dir, 'shared.db');
  return {
    settings: { 'database.connection': `sqlite:///${path}` },
    async deleteBehindTheBack(token) {
      const db = new BetterSqlite3(path);
      db.prepare('DELETE FROM console_auth_tokens WHERE token_hash = ?').run(hashToken(token));
      db.close();
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { expiry: true, drain: true });

registryContract('PostgreSQL', async () => {
  const db = await freshPostgres();
  return {
    settings: { 'database.connection': db.url },
    deleteBehindTheBack: async (token) => void (await db.query('DELETE FROM console_auth_tokens WHERE token_hash = $1', [hashToken(token)])),
    cleanup: () => db.drop(),
  };
});

registryContract('MariaDB', async () => {
  const db = await freshMariadb();
  return {
    settings: { 'database.connection': db.url },
    deleteBehindTheBack: async (token) => void (await db.query('DELETE FROM console_auth_tokens WHERE token_hash = ?', [hashToken(token)])),
    cleanup: () => db.drop(),
  };
});

registryContract('Redis', async () => {
  const r = await freshRedis();
  return {
    settings: { 'database.connection': r.url, 'porthole.redis_key_prefix': r.prefix },
    deleteBehindTheBack: async (token) => void (await r.redis.del(`${r.prefix}token:${hashToken(token)}`)),
    cleanup: () => r.drop(),
  };
}, { expiry: true });
