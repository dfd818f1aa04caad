/**
 * What the compute API keeps beside a token it mints (issue 18): the caller's user as the token's
 * minter (`porthole_token_extras`, Porthole's own store; the viewer's name on a shared console and
 * in the sessions list), no label, no flag; from `POST /servers/{id}/remote-consoles` and the
 * legacy actions alike, with Nova's bodies unchanged. A store that fails to keep them fails no
 * mint: the token stands and a warning is logged (without the token).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TokenExtrasStore } from '../../src/store/token-extras.ts';
import { hashToken } from '../../src/store/types.ts';
import { startApi, tokenOfUrl, type TestApi } from '../support/api.ts';

const SERVER = '11111111-1111-4111-8111-111111111111';

describe('token extras of API mints', () => {
  let gw: TestApi;

  before(async () => {
    gw = await startApi();
    await gw.addServer({ id: SERVER, name: 'web1', projectId: 'p1', vnc: { host: '127.0.0.1', port: 5901 } });
  });
  after(() => gw.close());

  it('keeps the caller as the minter of a remote console\'s token, Nova\'s body unchanged', async () => {
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'alice:p1', headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body), ['remote_console']);
    assert.deepEqual(Object.keys(r.body.remote_console).sort(), ['protocol', 'type', 'url']);
    const token = tokenOfUrl(r.body.remote_console.url);
    assert.deepEqual(await gw.gateway.stores.tokenExtras!.get(hashToken(token)), { label: null, mintedBy: 'alice', control: false, record: false });
  });

  it('keeps it for the legacy os-getVNCConsole action too', async () => {
    const r = await gw.call('POST', `/v2.1/servers/${SERVER}/action`, { token: 'bob:p1', body: { 'os-getVNCConsole': { type: 'novnc' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.console).sort(), ['type', 'url']);
    assert.equal((await gw.gateway.stores.tokenExtras!.get(hashToken(tokenOfUrl(r.body.console.url))))?.mintedBy, 'bob');
  });

  it('mints when the extras cannot be kept, and says so in the log without the token', async () => {
    const extras = gw.gateway.stores.tokenExtras! as TokenExtrasStore;
    const put = extras.put;
    extras.put = async () => {
      throw new Error('extras store down');
    };
    try {
      const r = await gw.call('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { token: 'carol:p1', headers: { 'X-OpenStack-Nova-API-Version': '2.6' }, body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
      assert.equal(r.status, 200, r.text);
      const token = tokenOfUrl(r.body.remote_console.url);
      assert.equal((await gw.gateway.stores.tokens.lookup(token)).status, 'valid');
      const warning = gw.logs.find((l) => l['event'] === 'token_extras');
      assert.ok(warning, 'a warning');
      assert.match(String(warning['msg']), /extras store down/);
      assert.ok(!gw.rawLog.join('').includes(token), 'the token is not logged');
    } finally {
      extras.put = put;
    }
  });
});
