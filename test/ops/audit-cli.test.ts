/**
 * The audit trail from the `porthole` command line, as an operator runs it (the real bin, a
 * SQLite store, `--porthole-audit_log`): `token create` and `token revoke` are recorded with the
 * operating-system user as actor, in the audit file and the store; `porthole events list` answers
 * them from the store as the events API does (`--json` the same objects, filters by server and
 * since), and refuses a whole token given for a prefix without printing it.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashToken } from '../../src/store/types.ts';
import { tempDir } from '../support/gateway.ts';
import { porthole, type RunResult } from '../support/process.ts';

const SERVER = '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
const OTHER = '2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a';

function json(r: RunResult): any {
  assert.equal(r.code, 0, `exit ${r.code}, stderr: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('audit trail: porthole token and events commands', () => {
  const dir = tempDir('porthole-audit-cli-');
  const audit = join(dir, 'audit.log');
  const common = ['--database-connection', `sqlite:///${join(dir, 'p.db')}`, '--porthole-audit_log', audit];
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('records to the store only, with a warning, while the audit file does not exist (the daemon creates it)', async () => {
    const r = await porthole(['token', 'create', '--instance-uuid', OTHER, '--host', '127.0.0.1', '--port', '5902', '--json', ...common]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /audit file .* does not exist yet .*store only/);
    assert.equal(existsSync(audit), false);
    const listed = json(await porthole(['events', 'list', '--json', ...common]));
    assert.deepEqual(listed.events.map((e: any) => [e.event, e.server]), [['token.minted', OTHER]]);
    // as the daemon would: its own file, 0600
    closeSync(openSync(audit, 'a', 0o600));
  });

  it('records token create and revoke with the OS user, and lists them from the store', async () => {
    const created = json(await porthole(['token', 'create', '--instance-uuid', SERVER, '--host', '127.0.0.1', '--port', '5901', '--json', ...common]));
    const other = json(await porthole(['token', 'create', '--instance-uuid', OTHER, '--host', '127.0.0.1', '--port', '5902', '--json', ...common]));
    const revoked = json(await porthole(['token', 'revoke', created.token, '--json', ...common]));
    assert.deepEqual(revoked, { revoked: 1 });
    const prefix = hashToken(created.token).slice(0, 8);
    const me = { cli: userInfo().username };

    const lines = readFileSync(audit, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.event, l.server, l.token, l.actor]), [
      ['token.minted', SERVER, prefix, me],
      ['token.minted', OTHER, hashToken(other.token).slice(0, 8), me],
      ['token.revoked', SERVER, prefix, me],
    ]);
    assert.ok(lines.every((l) => /^cli@/.test(l.proxy)));
    assert.equal(statSync(audit).mode & 0o777, 0o600);

    const listed = json(await porthole(['events', 'list', '--server', SERVER, '--json', ...common]));
    assert.deepEqual(listed.events, lines.filter((l) => l.server === SERVER).reverse());
    const since = json(await porthole(['events', 'list', '--since', lines[1].time, '--order', 'oldest', '--json', ...common]));
    // (the first test's token.minted of OTHER is older than lines[1])
    assert.deepEqual(since.events.map((e: any) => e.event), ['token.minted', 'token.revoked']);

    const text = await porthole(['events', 'list', '--server', SERVER, ...common]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^TIME +EVENT +SERVER +TOKEN/);
    assert.match(text.stdout, new RegExp(`token\\.revoked +${SERVER} +${prefix} +cli:${me.cli}`));
    assert.match(text.stdout, /2 event\(s\)\n$/);

    for (const out of [readFileSync(audit, 'utf8'), JSON.stringify(listed), JSON.stringify(since), text.stdout]) {
      assert.equal(out.includes(created.token), false);
      assert.equal(out.includes(other.token), false);
    }
  });

  it('refuses a whole token for --token without printing it, and a bad time', async () => {
    const token = '6f2c1d0e-9b8a-4766-8544-332211009988';
    const r = await porthole(['events', 'list', '--token', token, ...common]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--token: expected the 8 hex digits/);
    assert.equal(r.stderr.includes(token), false);
    const t = await porthole(['events', 'list', '--since', 'last tuesday', ...common]);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /invalid --since/);
  });
});
