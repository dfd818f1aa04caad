/**
 * `GET /porthole/v1/servers/{id}/screenshot` through a real gateway (static API tokens: an admin,
 * a member and a reader of project p, a member of project q) to real TigerVNC Xvnc servers, one
 * of them with a VNC password that the security proxy answers with the server's own setting:
 * the PNG's pixels are the painted ones, `?width=` scales, the policy and the errors are Nova's
 * (bodies and statuses), the password never reaches a log line, the audit trail records who took
 * it, and no descriptor or backend connection is left behind.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newStaticToken } from '../../src/api/auth.ts';
import { assertFault, startApi, type TestApi } from '../support/api.ts';
import { eventually, tempDir } from '../support/gateway.ts';
import { connectionsTo, leakMeter, openDescriptors, settled } from '../support/leak-meter.ts';
import { freePort, haveXvnc, type Xvnc } from '../support/xvnc.ts';
import { compare, decodePng, painted, paintedXvnc } from '../support/painted-screen.ts';

const SERVER = '5c2f6a1e-7b3d-4e8f-9a0b-1c2d3e4f5a6b';
const LOCKED = '6d3a7b2f-8c4e-4f9a-8b1c-2d3e4f5a6b7c';
const WRONG = '7e4b8c3a-9d5f-4a0b-9c2d-3e4f5a6b7c8d';
const CLOSED = '8f5c9d4b-0e6a-4b1c-8d3e-4f5a6b7c8d9e';
const SERIAL_ONLY = '9a6d0e5c-1f7b-4c2d-9e4f-5a6b7c8d9e0f';
const OTHERS = 'ab7e1f6d-2a8c-4d3e-8f5a-6b7c8d9e0f1a';
const UNKNOWN = 'bc8f2a7e-3b9d-4e4f-9a6b-7c8d9e0f1a2b';
const PASSWORD = 'pw-Xy7q!';

interface PngResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function get(port: number, path: string, token: string): Promise<PngResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { 'X-Auth-Token': token }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** The JSON fault of a non-200 answer, as test/support/api.ts's assertFault reads it. */
function asApi(r: PngResponse) {
  const text = r.body.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, text, body };
}

describe('GET /porthole/v1/servers/{id}/screenshot', { skip: !haveXvnc && 'no Xvnc' }, () => {
  let gw: TestApi;
  let dir: string;
  let open: Xvnc;
  let locked: Xvnc;
  const admin = newStaticToken('root', 'ops', ['admin']);
  const member = newStaticToken('mia', 'p', ['member']);
  const reader = newStaticToken('rita', 'p', ['reader']);
  const stranger = newStaticToken('sam', 'q', ['member']);
  const shot = (id: string, token: string, query = '') => get(gw.apiPort, `/porthole/v1/servers/${id}/screenshot${query}`, token);

  before(async () => {
    dir = tempDir('porthole-api-shot-');
    const file = join(dir, 'api-tokens');
    writeFileSync(file, [admin, member, reader, stranger].map((t) => t.line).join('\n') + '\n', { mode: 0o600 });
    open = await paintedXvnc();
    locked = await paintedXvnc({ password: PASSWORD });
    gw = await startApi({ 'api.auth_strategy': 'static', 'porthole.api_tokens_file': file, 'vnc.auth_schemes': 'vnc,none', 'porthole.screenshot_timeout': '20' });
    const vnc = (port: number) => ({ host: '127.0.0.1', port });
    await gw.addServer({ id: SERVER, name: 'painted', projectId: 'p', vnc: vnc(open.port) });
    await gw.addServer({ id: LOCKED, name: 'locked', projectId: 'p', vnc: vnc(locked.port), backendAuth: { authSchemes: ['vnc'], vncPassword: PASSWORD, vncUsername: null, tlsServerName: null } });
    await gw.addServer({ id: WRONG, name: 'wrong', projectId: 'p', vnc: vnc(locked.port), backendAuth: { authSchemes: ['vnc'], vncPassword: 'not-it-9', vncUsername: null, tlsServerName: null } });
    await gw.addServer({ id: CLOSED, name: 'closed', projectId: 'p', vnc: vnc(await freePort()) });
    await gw.addServer({ id: SERIAL_ONLY, name: 'serial', projectId: 'p', vnc: null, serial: vnc(await freePort()) });
    await gw.addServer({ id: OTHERS, name: 'theirs', projectId: 'q', vnc: vnc(open.port) });
  });
  after(async () => {
    await gw?.close();
    await open?.stop();
    await locked?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives an admin the PNG of the screen as painted, not to be cached', async () => {
    const r = await shot(SERVER, admin.token);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'image/png');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['x-porthole-screenshot-source'], 'connection');
    const png = decodePng(r.body);
    assert.deepEqual([png.width, png.height], [640, 480]);
    const c = compare(png, painted);
    assert.equal(c.differing, 0, `${c.differing} pixels differ; first ${c.first}`);
  });

  it('scales to ?width=, keeping the aspect ratio, and never up', async () => {
    const half = decodePng((await shot(SERVER, admin.token, '?width=320')).body);
    assert.deepEqual([half.width, half.height], [320, 240]);
    const tiny = decodePng((await shot(SERVER, admin.token, '?width=16')).body);
    assert.deepEqual([tiny.width, tiny.height], [16, 12]);
    const wide = decodePng((await shot(SERVER, admin.token, '?width=4000')).body);
    assert.deepEqual([wide.width, wide.height], [640, 480]);
  });

  it('refuses a width under 16 or not a number: 400', async () => {
    for (const q of ['?width=15', '?width=0', '?width=abc', '?width=-20', '?width=1.5', '?width=99999']) {
      assertFault(asApi(await shot(SERVER, admin.token, q)), 400, /width/);
    }
  });

  it('lets a member of the server\'s project take one (porthole:servers:screenshot)', async () => {
    const r = await shot(SERVER, member.token);
    assert.equal(r.status, 200);
    assert.equal(decodePng(r.body).width, 640);
  });

  it('refuses a reader of the project: 403 by the policy', async () => {
    assertFault(asApi(await shot(SERVER, reader.token)), 403, "Policy doesn't allow porthole:servers:screenshot to be performed.");
  });

  it('does not show another project\'s server to a member: 404, as for an unknown one', async () => {
    assertFault(asApi(await shot(OTHERS, member.token)), 404, `Instance ${OTHERS} could not be found.`);
    assertFault(asApi(await shot(SERVER, stranger.token)), 404, `Instance ${SERVER} could not be found.`);
    assertFault(asApi(await shot(UNKNOWN, admin.token)), 404, `Instance ${UNKNOWN} could not be found.`);
  });

  it('authenticates with the server\'s VNC password (the security proxy\'s backend auth), which no log line holds', async () => {
    const r = await shot(LOCKED, member.token);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(compare(decodePng(r.body), painted).differing, 0);
    assert.ok(!gw.rawLog.join('').includes(PASSWORD), 'the VNC password is in the log');
  });

  it('says a refused password is a console that could not be authenticated: 502, words naming no secret', async () => {
    const r = asApi(await shot(WRONG, admin.token));
    assertFault(r, 502, `No screenshot of server ${WRONG}: the console could not be authenticated`);
    assert.ok(!r.text.includes('not-it-9') && !r.text.includes('127.0.0.1'), r.text);
    const line = await eventually('the failure\'s log line', () => gw.logs.find((l) => l.event === 'screenshot_failed' && l.server === WRONG));
    assert.match(line.msg, /refused|SecurityResult|authentication/i);
    assert.ok(!gw.rawLog.join('').includes('not-it-9'), 'the wrong password is in the log');
  });

  it('says clearly that a closed VNC port cannot be reached: 502', async () => {
    assertFault(asApi(await shot(CLOSED, admin.token)), 502, `No screenshot of server ${CLOSED}: the console is not reachable`);
  });

  it('is a 409 for a server with no VNC console', async () => {
    assertFault(asApi(await shot(SERIAL_ONLY, admin.token)), 409, `Server ${SERIAL_ONLY} has no VNC console`);
  });

  it('records screenshot.taken in the audit trail, with who took it', async () => {
    const events = await eventually('screenshot.taken events', async () => {
      const r = await gw.call('GET', `/porthole/v1/events?event=screenshot.taken&server=${LOCKED}`, { token: admin.token });
      assert.equal(r.status, 200, r.text);
      return r.body.events.length > 0 ? r.body.events : undefined;
    });
    assert.equal(events[0].event, 'screenshot.taken');
    assert.equal(events[0].server, LOCKED);
    assert.deepEqual(events[0].actor, { user: 'mia', project: 'p' });
  });

  it('is in the OpenAPI document as a PNG', async () => {
    const doc = (await gw.call('GET', '/porthole/v1/openapi.json')).body;
    const op = doc.paths['/porthole/v1/servers/{id}/screenshot'].get;
    assert.ok(op.responses['200'].content['image/png'], JSON.stringify(op.responses));
    assert.ok(op.parameters.some((p: { name: string; in: string }) => p.name === 'width' && p.in === 'query'));
  });

  it('leaves no descriptor or connection to the VNC server behind, whatever the outcome', async () => {
    const meter = leakMeter({ descriptors: () => openDescriptors(), 'connections to Xvnc': () => connectionsTo(open.port), 'connections to the locked Xvnc': () => connectionsTo(locked.port) });
    // one of each first, so lazily opened descriptors (the audit's, the store's) are in the baseline
    await Promise.all([shot(SERVER, admin.token), shot(WRONG, admin.token), shot(CLOSED, admin.token)]);
    const baseline = await meter.read();
    for (let i = 0; i < 5; i++) {
      const rs = await Promise.all([shot(SERVER, admin.token, '?width=100'), shot(LOCKED, admin.token), shot(WRONG, admin.token), shot(CLOSED, admin.token)]);
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 502, 502]);
    }
    await settled(meter, baseline, 5000);
  });
});
