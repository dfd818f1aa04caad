/**
 * @module test/store/contract
 * The `TokenStore` and `Inventory` contract, one set of cases run against every backend
 * (SQLite, PostgreSQL, MariaDB, Redis) by the backend's own test file, each in a fresh database
 * or key prefix. Where a backend differs by design the target says so (`expiresByItself`: Redis
 * deletes a token when it expires, so it is unknown rather than expired and the sweep finds
 * none); everything else must hold alike, single-use consumption racing across two store
 * instances (two proxies, as far as the store can tell) included.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Server } from '../../src/inventory/types.ts';
import type { OpenedStores as Stores } from '../../src/database/index.ts';
import { nowSeconds, type ConsoleToken, type NewConsoleToken } from '../../src/store/types.ts';

export interface ContractTarget {
  /** Opens another Stores on the same database or prefix, as another process would. */
  open(): Promise<Stores>;
  /** Sets a token's `expires`, as time passing would. */
  setExpires(record: ConsoleToken, expires: number): Promise<void>;
  /** Everything the store holds, as text. */
  dump(): Promise<string>;
  /** Redis: a token's key expires with it. */
  readonly expiresByItself: boolean;
  cleanup(): Promise<void>;
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const INSTANCE_A = '0b7c6c4e-6f2b-4d43-9d5e-0c1f3a8e2a11';
export const INSTANCE_B = '5d2f9a70-1c3e-4b8a-a6d4-7e9f0b1c2d33';
const RACES = 40;

export function spec(over: Partial<NewConsoleToken> = {}): NewConsoleToken {
  return { consoleType: 'novnc', host: '192.0.2.10', port: 5901, instanceUuid: INSTANCE_A, accessUrlBase: 'http://127.0.0.1:6080/vnc_auto.html', ttl: 600, ...over };
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

export function storeContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`store contract on ${name}`, () => {
    let target: ContractTarget;
    let stores: Stores;
    let other: Stores;

    before(async () => {
      target = await setup();
      stores = await target.open();
      other = await target.open();
    });
    after(async () => {
      await stores?.close();
      await other?.close();
      await target?.cleanup();
    });

    describe('tokens', () => {
      it('mints a UUID4 token and returns the stored record', async () => {
        const before = nowSeconds();
        const { token, record } = await stores.tokens.create(spec({ internalAccessPath: 'vnc-path' }));
        assert.match(token, UUID4);
        assert.equal(record.tokenHash, sha256(token));
        assert.equal(record.consoleType, 'novnc');
        assert.equal(record.host, '192.0.2.10');
        assert.equal(record.port, 5901);
        assert.equal(record.instanceUuid, INSTANCE_A);
        assert.equal(record.internalAccessPath, 'vnc-path');
        assert.equal(record.accessUrlBase, 'http://127.0.0.1:6080/vnc_auto.html');
        assert.equal(record.tlsPort, null);
        assert.ok(record.id > 0);
        assert.ok(record.expires >= before + 600 && record.expires <= nowSeconds() + 600, `expires ${record.expires}`);
      });

      it('mints a different token, with a different id, every time', async () => {
        const a = await stores.tokens.create(spec());
        const b = await other.tokens.create(spec());
        assert.notEqual(a.token, b.token);
        assert.notEqual(a.record.id, b.record.id);
      });

      it('stores the SHA-256 hex hash of the token, and the token itself nowhere', async () => {
        const { token } = await stores.tokens.create(spec());
        const all = await target.dump();
        assert.ok(all.includes(sha256(token)), 'the hash is stored');
        assert.ok(!all.includes(token), 'the raw token is stored');
      });

      it('finds a valid token with what it opens, from another store instance too', async () => {
        const { token, record } = await stores.tokens.create(spec({ host: '198.51.100.7', port: 5999, instanceUuid: INSTANCE_B, tlsPort: 5998, internalAccessPath: null, accessUrlBase: null }));
        for (const s of [stores, other]) {
          const found = await s.tokens.lookup(token);
          assert.equal(found.status, 'valid');
          assert.ok(found.status === 'valid');
          assert.deepEqual(found.token, record);
        }
      });

      it(`does not accept a token past its expiry (${name}: ${'reported as expired or, where the store deletes it, unknown'})`, async () => {
        const { token, record } = await stores.tokens.create(spec());
        await target.setExpires(record, nowSeconds() - 5);
        const found = await stores.tokens.lookup(token);
        if (target.expiresByItself) assert.equal(found.status, 'unknown');
        else {
          assert.equal(found.status, 'expired');
          assert.ok(found.status === 'expired');
          assert.equal(found.token.host, record.host);
          assert.equal((await stores.tokens.lookup(token)).status, 'expired', 'a lookup does not delete');
        }
      });

      it('treats expires equal to now as not valid (valid only while expires > now, as Nova)', async () => {
        const { token, record } = await stores.tokens.create(spec());
        await target.setExpires(record, nowSeconds());
        assert.notEqual((await stores.tokens.lookup(token)).status, 'valid');
      });

      it('reports an unknown token as unknown, and does not take the hash for the token', async () => {
        assert.deepEqual(await stores.tokens.lookup('5f0e7f34-5c71-4d0e-9b3f-3c7f1f0c9a2e'), { status: 'unknown' });
        assert.deepEqual(await stores.tokens.lookup(''), { status: 'unknown' });
        const { record } = await stores.tokens.create(spec());
        assert.equal((await stores.tokens.lookup(record.tokenHash)).status, 'unknown');
      });

      it('revokes one token, for every store instance, and says whether it existed', async () => {
        const kept = await stores.tokens.create(spec());
        const gone = await stores.tokens.create(spec());
        assert.equal(await other.tokens.revoke(gone.token), true);
        assert.equal((await stores.tokens.lookup(gone.token)).status, 'unknown');
        assert.equal(await stores.tokens.revoke(gone.token), false);
        assert.equal((await stores.tokens.lookup(kept.token)).status, 'valid');
      });

      it('revokes every token of an instance and no other', async () => {
        const instance = crypto.randomUUID();
        const otherInstance = crypto.randomUUID();
        const mine = [await stores.tokens.create(spec({ instanceUuid: instance })), await other.tokens.create(spec({ instanceUuid: instance, port: 5902 })), await stores.tokens.create(spec({ instanceUuid: instance, consoleType: 'serial' }))];
        const theirs = await stores.tokens.create(spec({ instanceUuid: otherInstance }));
        assert.equal(await other.tokens.revokeByInstance(instance), 3);
        for (const t of mine) assert.equal((await stores.tokens.lookup(t.token)).status, 'unknown');
        assert.equal((await stores.tokens.lookup(theirs.token)).status, 'valid');
        assert.equal(await stores.tokens.revokeByInstance(instance), 0);
      });

      it('sweeps expired tokens and keeps the valid ones', async () => {
        const live = await stores.tokens.create(spec());
        const expired = [await stores.tokens.create(spec()), await stores.tokens.create(spec())];
        for (const e of expired) await target.setExpires(e.record, nowSeconds() - 1);
        const swept = await stores.tokens.sweepExpired();
        if (target.expiresByItself) assert.equal(swept, 0, 'nothing left to sweep');
        else assert.ok(swept >= 2, `swept ${swept}`);
        assert.equal((await stores.tokens.lookup(live.token)).status, 'valid');
        for (const e of expired) assert.equal((await stores.tokens.lookup(e.token)).status, 'unknown');
        assert.equal(await stores.tokens.sweepExpired(), 0);
      });

      it('keeps tokens when a store is closed and opened again (a proxy restart)', async () => {
        const first = await target.open();
        const { token, record } = await first.tokens.create(spec());
        await first.close();
        const second = await target.open();
        try {
          const found = await second.tokens.lookup(token);
          assert.ok(found.status === 'valid');
          assert.deepEqual(found.token, record);
        } finally {
          await second.close();
        }
      });
    });

    describe('single-use tokens', () => {
      const A = '198.51.100.1';
      const B = '198.51.100.2';

      it('lets the first connection consume a token and refuses it to every other while it is live', async () => {
        const { record } = await stores.tokens.create(spec());
        assert.equal(await stores.tokens.consume(record, A, 30), 'first');
        assert.equal(await other.tokens.consume(record, A, 30), 'refused', 'same client, session still live');
        assert.equal(await other.tokens.consume(record, B, 30), 'refused', 'another client');
      });

      it('lets the same client reconnect within the grace after the session ended, once', async () => {
        const { record } = await stores.tokens.create(spec());
        assert.equal(await stores.tokens.consume(record, A, 30), 'first');
        await other.tokens.release(record, B); // not the holder: changes nothing
        assert.equal(await other.tokens.consume(record, A, 30), 'refused');
        await stores.tokens.release(record, A);
        assert.equal(await other.tokens.consume(record, B, 30), 'refused', 'another client');
        assert.equal(await other.tokens.consume(record, A, 30), 'reconnect');
        assert.equal(await stores.tokens.consume(record, A, 30), 'refused', 'live again');
        await other.tokens.release(record, A);
        assert.equal(await stores.tokens.consume(record, A, 30), 'reconnect');
      });

      it('makes a token unused again when the connection that consumed it failed', async () => {
        const { record } = await stores.tokens.create(spec());
        assert.equal(await stores.tokens.consume(record, A, 30), 'first');
        await other.tokens.forget(record, B); // not the holder: changes nothing
        assert.equal(await stores.tokens.consume(record, B, 30), 'refused');
        await other.tokens.forget(record, A);
        assert.equal(await stores.tokens.consume(record, B, 30), 'first', 'any client may use it now');
      });

      it('refuses a reconnection after the grace (0: never)', async () => {
        const { record } = await stores.tokens.create(spec());
        assert.equal(await stores.tokens.consume(record, A, 0), 'first');
        await stores.tokens.release(record, A);
        assert.equal(await other.tokens.consume(record, A, 0), 'refused');
      });

      it(`lets exactly one of two store instances win each of ${RACES} races for a token`, async () => {
        const records = await Promise.all(Array.from({ length: RACES }, () => stores.tokens.create(spec()).then((r) => r.record)));
        const outcomes = await Promise.all(
          records.map((record) =>
            Promise.all([stores.tokens.consume(record, A, 30), other.tokens.consume(record, B, 30), other.tokens.consume(record, A, 30), stores.tokens.consume(record, B, 30)]),
          ),
        );
        for (const [i, o] of outcomes.entries()) {
          assert.equal(o.filter((x) => x === 'first').length, 1, `race ${i}: ${o.join(', ')}`);
          assert.equal(o.filter((x) => x === 'refused').length, 3, `race ${i}: ${o.join(', ')}`);
        }
      });

      it('keeps the use of a valid token through the sweep', async () => {
        const { record } = await stores.tokens.create(spec());
        assert.equal(await stores.tokens.consume(record, A, 30), 'first');
        await stores.tokens.sweepExpired();
        assert.equal(await stores.tokens.consume(record, B, 30), 'refused', 'a valid token\'s use is kept');
      });
    });

    describe('inventory', () => {
      const id: string = crypto.randomUUID();
      const server: Server = { id, name: 'contract-web-1', projectId: 'p1', status: 'ACTIVE', vnc: { host: '10.0.0.12', port: 5901 }, serial: null, spice: null, backendAuth: null };

      it('adds, finds and lists a server, seen by every store instance', async () => {
        await stores.inventory.put(server);
        assert.deepEqual(await other.inventory.get(id), server);
        assert.deepEqual(await other.inventory.get(id.toUpperCase()), server);
        assert.ok((await other.inventory.list()).some((s) => s.id === id));
        assert.equal(await stores.inventory.get(crypto.randomUUID()), undefined);
      });

      it('replaces a server, its backend auth included, and clears what the new one leaves out', async () => {
        const withAuth: Server = { ...server, name: 'contract-web-1b', status: 'SHUTOFF', backendAuth: { authSchemes: ['vencrypt', 'vnc'], vncUsername: 'u', vncPassword: 'pw 8 bytes+', tlsServerName: 'vnc.example' } };
        await other.inventory.put(withAuth);
        assert.deepEqual(await stores.inventory.get(id), withAuth);
        const bare: Server = { ...server, projectId: null, vnc: null, backendAuth: { authSchemes: null, vncUsername: null, vncPassword: 'only-a-password', tlsServerName: null } };
        await stores.inventory.put(bare);
        assert.deepEqual(await other.inventory.get(id), bare);
        await stores.inventory.put(server);
        assert.deepEqual(await other.inventory.get(id), server);
      });

      it('keeps a server\'s serial and SPICE endpoints, the SPICE TLS port included, and lists them', async () => {
        const all: Server = { ...server, serial: { host: '10.0.0.12', port: 4555 }, spice: { host: '10.0.0.13', port: 5900, tlsPort: 5901 } };
        await stores.inventory.put(all);
        assert.deepEqual(await other.inventory.get(id), all);
        assert.deepEqual((await other.inventory.list()).find((s) => s.id === id), all);
        const plainSpice: Server = { ...server, spice: { host: 'spice.example', port: 5930, tlsPort: null } };
        await other.inventory.put(plainSpice);
        assert.deepEqual(await stores.inventory.get(id), plainSpice, 'a SPICE endpoint without a TLS port');
        await stores.inventory.put(server);
        assert.deepEqual(await other.inventory.get(id), server);
      });

      it('keeps a server with a serial console only', async () => {
        const serialOnly: Server = { ...server, id: crypto.randomUUID(), name: 'contract-serial-only', vnc: null, serial: { host: '::1', port: 4556 } };
        await stores.inventory.put(serialOnly);
        assert.deepEqual(await other.inventory.get(serialOnly.id), serialOnly);
        await stores.inventory.remove(serialOnly.id);
      });

      it('replaces a server\'s endpoints: one put again without serial or SPICE has neither', async () => {
        await stores.inventory.put({ ...server, serial: { host: '10.0.0.12', port: 4555 }, spice: { host: '10.0.0.12', port: 5930, tlsPort: 5931 } });
        await other.inventory.put({ ...server, spice: { host: '10.0.0.12', port: 5940 } });
        assert.deepEqual(await stores.inventory.get(id), { ...server, spice: { host: '10.0.0.12', port: 5940, tlsPort: null } }, 'the serial endpoint and the TLS port are gone');
        await other.inventory.put(server);
        assert.deepEqual(await stores.inventory.get(id), server);
      });

      it('keeps a server\'s shared-console and recording choices; one put again without them leaves them to the config', async () => {
        const on: Server = { ...server, sharedConsoles: true, record: false };
        await stores.inventory.put(on);
        assert.deepEqual(await other.inventory.get(id), on);
        assert.deepEqual((await other.inventory.list()).find((s) => s.id === id), on);
        const off: Server = { ...server, sharedConsoles: false, record: true };
        await other.inventory.put(off);
        assert.deepEqual(await stores.inventory.get(id), off);
        await stores.inventory.put({ ...server, sharedConsoles: null, record: null });
        const back = await other.inventory.get(id);
        assert.deepEqual(back, server);
        assert.equal(back?.sharedConsoles ?? null, null);
      });

      it('lists servers by name, then id', async () => {
        const ids: string[] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
        await stores.inventory.put({ ...server, id: ids[0]!, name: 'contract-zz' });
        await stores.inventory.put({ ...server, id: ids[1]!, name: 'contract-aa' });
        await other.inventory.put({ ...server, id: ids[2]!, name: 'contract-mm' });
        const names = (await stores.inventory.list()).filter((s) => ids.includes(s.id)).map((s) => s.name);
        assert.deepEqual(names, ['contract-aa', 'contract-mm', 'contract-zz']);
      });

      it('removes a server and says whether it existed', async () => {
        assert.equal(await other.inventory.remove(id), true);
        assert.equal(await stores.inventory.get(id), undefined);
        assert.ok(!(await stores.inventory.list()).some((s) => s.id === id));
        assert.equal(await stores.inventory.remove(id), false);
      });

      it('registers the same new server from two instances at once without an error', async () => {
        const racing = crypto.randomUUID();
        await Promise.all([stores.inventory.put({ ...server, id: racing, name: 'contract-race-a' }), other.inventory.put({ ...server, id: racing, name: 'contract-race-b' })]);
        assert.match((await stores.inventory.get(racing))!.name, /^contract-race-[ab]$/);
      });
    });
  });
}
