/**
 * Hostile input to the compute and admin APIs: malformed JSON, wrong content types, bodies over
 * `[porthole] api_max_body_size`, unknown fields, deep nesting, huge numbers, non-object bodies,
 * property names of Object.prototype, broken URLs. Each gets a 4xx in Nova's shape (as Nova's
 * wsgi.Resource answers: "Malformed request body", 415 "Unsupported Content-Type", 413
 * overLimit) and never a 500: every response of this file is checked for that at the end.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { assertFault, startApi, type ApiCall, type ApiResponse, type TestApi } from '../support/api.ts';

const SERVER = 'f6f6f6f6-0000-4000-8000-000000000001';
// large enough for a body nested DEPTH deep, small enough that bigger bodies are cheap to send
const LIMIT = 128 * 1024;
const V28 = { 'X-OpenStack-Nova-API-Version': '2.8' };
const CONSOLE_JSON = '{"remote_console": {"protocol": "vnc", "type": "novnc"}}';
const DEPTH = 30_000;

describe('hostile input to the API', () => {
  let gw: TestApi;
  const seen: { what: string; status: number }[] = [];

  before(async () => {
    gw = await startApi({ 'porthole.api_max_body_size': String(LIMIT) });
    await gw.addServer({ id: SERVER, name: 'web1', vnc: { host: '127.0.0.1', port: 5901 } });
  });
  after(() => gw.close());

  async function send(method: string, path: string, opts: ApiCall = {}): Promise<ApiResponse> {
    const r = await gw.call(method, path, { token: 'notused', ...opts });
    seen.push({ what: `${method} ${path.slice(0, 80)} ${String(opts.body ?? '').slice(0, 60)}`, status: r.status });
    return r;
  }
  const remoteConsole = (body: unknown, headers: Record<string, string> = {}) => send('POST', `/v2.1/servers/${SERVER}/remote-consoles`, { body, headers: { ...V28, ...headers } });
  const action = (body: unknown, headers: Record<string, string> = {}) => send('POST', `/v2.1/servers/${SERVER}/action`, { body, headers });
  const adminPost = (body: unknown, headers: Record<string, string> = {}) => send('POST', '/porthole/v1/servers', { token: 'admin', body, headers });

  describe('malformed JSON', () => {
    for (const body of ['{"remote_console": ', "{'remote_console': {}}", '{"remote_console": {"protocol": "vnc", "type": "novnc"},}', 'NaN', '{"a": undefined}', '\uFEFF' + CONSOLE_JSON, '}{']) {
      it(`answers ${JSON.stringify(body).slice(0, 50)} with 400 "Malformed request body"`, async () => {
        assertFault(await remoteConsole(body, { 'Content-Type': 'application/json' }), 400, 'Malformed request body');
      });
    }

    it('answers bytes that are not UTF-8 with 400 "Malformed request body"', async () => {
      assertFault(await remoteConsole(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 400, 'Malformed request body');
    });

    it('answers malformed JSON to the legacy action and the admin API the same way', async () => {
      assertFault(await action('{"os-getVNCConsole": {"type": "novnc"}'), 400, 'Malformed request body');
      assertFault(await adminPost('{"name": "x"', { 'Content-Type': 'application/json' }), 400, 'Malformed request body');
    });
  });

  describe('content types', () => {
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/html', 'application/jsonx']) {
      it(`answers Content-Type ${type} with Nova's 415 badMediaType`, async () => {
        assertFault(await remoteConsole(type.startsWith('application/x-www') ? 'remote_console=vnc' : CONSOLE_JSON, { 'Content-Type': type }), 415, 'Unsupported Content-Type');
      });
    }

    // Nova's Request.get_content_type: no Content-Type and text/plain mean JSON
    for (const [name, headers] of [
      ['no Content-Type', {}],
      ['Content-Type text/plain', { 'Content-Type': 'text/plain' }],
      ['Content-Type application/json; charset=utf-8', { 'Content-Type': 'application/json; charset=utf-8' }],
    ] as const) {
      it(`takes a JSON body with ${name}, as Nova does`, async () => {
        const r = await remoteConsole(CONSOLE_JSON, headers);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.remote_console.protocol, 'vnc');
      });
    }
  });

  describe('body size', () => {
    it(`answers a body over [porthole] api_max_body_size (${LIMIT}) with 413 overLimit`, async () => {
      const body = JSON.stringify({ remote_console: { protocol: 'vnc', type: 'novnc' }, pad: 'x'.repeat(LIMIT) });
      assertFault(await remoteConsole(body), 413, 'Request is too large.');
    });

    it('answers a 1 MiB body with 413 too, and stays up', async () => {
      assertFault(await remoteConsole('x'.repeat(1024 * 1024), { 'Content-Type': 'application/json' }), 413, 'Request is too large.');
      assert.equal((await send('GET', '/v2.1/servers')).status, 200);
    });

    it('answers a chunked body (no Content-Length) that grows over the limit with 413', async () => {
      const r = await new Promise<ApiResponse>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: gw.apiPort, method: 'POST', path: `/v2.1/servers/${SERVER}/remote-consoles`, headers: { ...V28, 'X-Auth-Token': 'notused', 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        for (let i = 0; i < LIMIT / 1024 + 8; i++) req.write('x'.repeat(1024));
        req.end();
      });
      seen.push({ what: 'chunked', status: r.status });
      assertFault(r, 413, 'Request is too large.');
    });
  });

  describe('bodies of the wrong shape', () => {
    // Nova's answers, read from python3-nova's router (schema-strictness.test.ts compares them
    // with Nova live): a schema refuses a non-object at the top with jsonschema's bare message;
    // the action route first looks for the one action key (wsgi.action_peek), so a body with
    // no len() or no keys() is the 404 of a missing method, and any other count of keys 400
    const nonObjects: [string, number, string][] = [
      ['[]', 400, 'Malformed request body'],
      ['"remote_console"', 400, 'Malformed request body'],
      ['42', 404, 'The resource could not be found.'],
      ['null', 404, 'The resource could not be found.'],
      ['true', 404, 'The resource could not be found.'],
      ['[{"remote_console": {"protocol": "vnc", "type": "novnc"}}]', 404, 'The resource could not be found.'],
    ];
    for (const [body, actionStatus, actionMessage] of nonObjects) {
      it(`answers the non-object body ${body.slice(0, 30)} with 400 (the action route: ${actionStatus})`, async () => {
        assertFault(await remoteConsole(body), 400, /^\S.* is not of type 'object'$/);
        assertFault(await action(body), actionStatus, actionMessage);
        assertFault(await adminPost(body), 400, /^\S.* is not of type 'object'$/);
      });
    }

    it('answers an empty body with 400', async () => {
      assertFault(await remoteConsole('', { 'Content-Type': 'application/json' }), 400, "None is not of type 'object'");
      assertFault(await action(''), 400, 'Malformed request body');
    });

    it('answers unknown fields with 400, at every level', async () => {
      assertFault(await remoteConsole({ remote_console: { protocol: 'vnc', type: 'novnc' }, remote: 1 }), 400, /Additional properties are not allowed \('remote' was unexpected\)/);
      assertFault(await remoteConsole({ remote_console: { protocol: 'vnc', type: 'novnc', token: 'mine' } }), 400, /Additional properties are not allowed \('token' was unexpected\)/);
      assertFault(await action({ 'os-getVNCConsole': { type: 'novnc', lang: 'EN' } }), 400, /Additional properties are not allowed/);
      assertFault(await adminPost({ name: 'x', vnc: { host: 'h', port: 5900, password: 'p' } }), 400, /Additional properties are not allowed \('password' was unexpected\)/);
      assertFault(await adminPost({ name: 'x', owner: 'me' }), 400, /Additional properties are not allowed \('owner' was unexpected\)/);
    });

    it('answers more than one action in one body with 400 "Malformed request body"', async () => {
      assertFault(await action({ 'os-getVNCConsole': { type: 'novnc' }, 'os-getSPICEConsole': { type: 'spice-html5' } }), 400, 'Malformed request body');
    });

    it(`answers bodies nested ${DEPTH} deep with 400`, async () => {
      const arrays = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
      const objects = '{"a":'.repeat(DEPTH / 4) + '1' + '}'.repeat(DEPTH / 4);
      assertFault(await remoteConsole(arrays), 400, /^\[\[\[.*\.\.\. is not of type 'object'$/);
      assertFault(await remoteConsole(objects), 400, "'remote_console' is a required property");
      assertFault(await remoteConsole(`{"remote_console": {"protocol": ${arrays}, "type": "novnc"}}`), 400, /^Invalid input for field\/attribute/);
      assertFault(await remoteConsole(`{"remote_console": ${objects}}`), 400, /^Invalid input for field\/attribute/);
      assertFault(await action(`{"os-getVNCConsole": ${objects}}`), 400, /^Invalid input for field\/attribute/);
      assertFault(await action(`{"os-getVNCConsole": {"type": ${arrays}}}`), 400, /^Invalid input for field\/attribute/);
      assertFault(await adminPost(`{"name": "x", "vnc": ${arrays}}`), 400, /^Invalid input for field\/attribute/);
    });

    it('answers huge numbers with 400', async () => {
      assertFault(await remoteConsole('{"remote_console": {"protocol": 1e999, "type": "novnc"}}'), 400, /^Invalid input for field\/attribute protocol/);
      assertFault(await action(`{"os-getVNCConsole": {"type": ${'9'.repeat(3000)}}}`), 400, /^Invalid input for field\/attribute/);
      assertFault(await adminPost({ name: 'x', vnc: { host: 'h', port: 1e30 } }), 400, /^Invalid input for field\/attribute port/);
      assertFault(await adminPost('{"name": "x", "vnc": {"host": "h", "port": 1e999}}'), 400, /^Invalid input for field\/attribute port/);
      for (const port of [0, 65536, -1, 5900.5]) assertFault(await adminPost({ name: 'x', vnc: { host: 'h', port } }), 400, /^Invalid input for field\/attribute port/);
    });

    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      it(`answers the action ${name} (a property of every JS object) with 400 "There is no such action"`, async () => {
        assertFault(await action(`{"${name}": {"type": "novnc"}}`), 400, `There is no such action: ${name}`);
      });
    }

    it('refuses __proto__ as a field of the remote-consoles and admin bodies', async () => {
      assertFault(await remoteConsole('{"remote_console": {"protocol": "vnc", "type": "novnc"}, "__proto__": {"admin": true}}'), 400, /Additional properties are not allowed/);
      assertFault(await remoteConsole('{"remote_console": {"__proto__": {"protocol": "vnc", "type": "novnc"}}}'), 400, /^Invalid input for field\/attribute/);
      assertFault(await adminPost('{"name": "x", "__proto__": {"project_id": "p"}}'), 400, /Additional properties are not allowed/);
    });
  });

  describe('URLs and headers', () => {
    it('answers a URL with broken percent-encoding with 400 in Nova\'s shape', async () => {
      assertFault(await send('GET', '/v2.1/servers/%E0%A4%A'), 400, /not a valid url/);
      assertFault(await send('GET', '/v2.1/os-console-auth-tokens/%ZZ', { token: 'admin' }), 400, /not a valid url/);
    });

    it('answers an over-long path parameter with 414 in Nova\'s shape (computeFault: Nova names no 414)', async () => {
      assertFault(await send('GET', `/v2.1/servers/${'a'.repeat(300)}`), 414, /exceeding the max param length/);
    });

    it('answers bad query parameters with 400', async () => {
      assertFault(await send('GET', '/v2.1/servers?limit=abc'), 400, /limit/);
      assertFault(await send('GET', '/v2.1/servers?limit=-1'), 400, /limit/);
      assertFault(await send('GET', `/v2.1/servers?name=${'n'.repeat(300)}`), 400, /name/);
      assert.equal((await send('GET', '/v2.1/servers?name=%E0%A4%A')).status, 200);
    });

    it('answers absurd microversions with 400 or 406', async () => {
      assertFault(await send('GET', '/v2.1/servers', { headers: { 'OpenStack-API-Version': `compute 2.${'9'.repeat(400)}` } }), 406, /is not supported by the API/);
      assertFault(await send('GET', '/v2.1/servers', { headers: { 'X-OpenStack-Nova-API-Version': 'x'.repeat(1000) } }), 400, /is of invalid format/);
    });

    it('answers a body on a GET without trouble', async () => {
      assert.equal((await send('GET', '/v2.1/servers', { body: '{"x": 1}', headers: { 'Content-Type': 'application/json' } })).status, 200);
    });
  });

  it('never answered 500, and logged no unexpected error', () => {
    assert.ok(seen.length > 50, `only ${seen.length} requests`);
    assert.deepEqual(seen.filter((s) => s.status >= 500), []);
    assert.deepEqual(gw.logs.filter((l) => l.event === 'api_error' || l.level >= 50).map((l) => l.msg), []);
  });
});
