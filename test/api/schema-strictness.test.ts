/**
 * The API's type strictness, held against Nova itself: what Nova's JSON schemas refuse (a list
 * where a string goes, a string where an integer goes, true, null, numbers, unknown fields,
 * bodies that are no object) Porthole refuses with Nova's status and Nova's exact words, and
 * what they let through Porthole takes; nothing is coerced. Nova is Debian's python3-nova
 * answering the same requests through its own router (test/api/nova_api.py: APIRouterV21,
 * wsgi.Resource, the validators, the fault bodies) in a child process. Porthole's admin API,
 * which Nova has no counterpart of, is held to Nova's validator run on the schema Porthole's
 * OpenAPI document declares for it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { novaSchemaMessage } from '../../src/api/schema-errors.ts';
import { startApi, type ApiResponse, type TestApi } from '../support/api.ts';
import { cleanEnv, PROJECT_ROOT } from '../support/process.ts';

const SERVER = '7e57a11c-0000-4000-8000-000000000001';
const PUT_SERVER = '7e57a11c-0000-4000-8000-000000000002';
const NOVA_MODULE = '/usr/lib/python3/dist-packages/nova';

interface NovaAnswer {
  status?: number;
  body?: any;
  message?: string | null;
  error?: string;
}

/** test/api/nova_api.py: one JSON line in, one out. */
class NovaApi {
  private readonly proc: ChildProcess;
  private readonly waiting: Array<(a: NovaAnswer) => void> = [];
  private stderr = '';

  constructor() {
    this.proc = spawn('/usr/bin/python3', [join(PROJECT_ROOT, 'test/api/nova_api.py')], { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv() });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.proc.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w({ error: `python3-nova exited (${code}): ${this.stderr}` });
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) this.waiting.shift()?.(JSON.parse(line) as NovaAnswer);
    });
  }

  async ask(cmd: Record<string, unknown>): Promise<NovaAnswer> {
    const answer = await new Promise<NovaAnswer>((resolve) => {
      this.waiting.push(resolve);
      this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
    if (answer.error) throw new Error(`Nova: ${answer.error}`);
    return answer;
  }

  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill();
  }
}

/** OpenAPI's `nullable` as jsonschema (Draft 4) writes it: a `null` in `type`. */
function draft4(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(draft4);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  const nullable = (schema as Record<string, unknown>).nullable === true;
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'nullable') continue;
    out[k] = k === 'type' && nullable ? [v, 'null'] : k === 'enum' ? v : draft4(v);
  }
  return out;
}

describe('API type strictness, against Nova', () => {
  let gw: TestApi;
  let nova: NovaApi;

  before(async () => {
    if (!existsSync(NOVA_MODULE)) throw new Error('Debian\'s python3-nova is needed (.ci/run installs it)');
    nova = new NovaApi();
    // hundreds of remote-console requests of one project within a minute, each compared with Nova's
    // answer: past api_console_requests_per_minute's default of 120 (its own test: rate-limit.test.ts)
    gw = await startApi({ 'porthole.api_console_requests_per_minute': '0' });
    // every console, so that what passes the schema is minted (not refused for a missing endpoint)
    await gw.addServer({ id: SERVER, name: 'strict-1', vnc: { host: '127.0.0.1', port: 5901 }, serial: { host: '127.0.0.1', port: 4555 }, spice: { host: '127.0.0.1', port: 5930 } });
  });
  after(async () => {
    nova?.stop();
    await gw?.close();
  });

  /** The same request to Porthole (under /v2.1) and to Nova. */
  async function both(method: string, path: string, version: string, body?: string): Promise<{ porthole: ApiResponse; nova: NovaAnswer }> {
    const headers: Record<string, string> = { 'OpenStack-API-Version': `compute ${version}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const [porthole, novaAnswer] = await Promise.all([gw.call(method, `/v2.1${path}`, { token: 'admin', headers, body }), nova.ask({ method, path, headers, body: body ?? null })]);
    return { porthole, nova: novaAnswer };
  }

  /**
   * Nova refused it: Porthole answers the same status and body. Nova let it through (its
   * stand-in compute API then finds no instance): Porthole does not refuse it with a 400.
   */
  function sameVerdict(what: string, { porthole, nova: n }: { porthole: ApiResponse; nova: NovaAnswer }): void {
    const passedNova = n.status === 404 && /^Instance .* could not be found\.$/.test(n.body?.itemNotFound?.message ?? '') || (n.status === 200);
    if (passedNova) {
      assert.ok(porthole.status < 400 || porthole.status === 501, `${what}: Nova takes it, Porthole answered ${porthole.status} ${porthole.text}`);
      return;
    }
    assert.equal(porthole.status, n.status, `${what}: Nova said ${n.status} ${JSON.stringify(n.body)}, Porthole ${porthole.status} ${porthole.text}`);
    assert.deepEqual(porthole.body, n.body, `${what}: Porthole's body differs from Nova's`);
  }

  describe('POST /servers/{id}/remote-consoles', () => {
    const rc = (inner: string) => `{"remote_console": ${inner}}`;
    const bodies = [
      // the issue's, and its kin: no coercion of lists, numbers, booleans or null to strings
      rc('{"protocol": ["vnc"], "type": "novnc"}'),
      rc('{"protocol": "vnc", "type": ["novnc"]}'),
      rc('{"protocol": [], "type": "novnc"}'),
      rc('{"protocol": ["vnc", "spice"], "type": "novnc"}'),
      rc('{"protocol": null, "type": "novnc"}'),
      rc('{"protocol": "vnc", "type": null}'),
      rc('{"protocol": 1, "type": "novnc"}'),
      rc('{"protocol": 2.5, "type": "novnc"}'),
      rc('{"protocol": 1e999, "type": "novnc"}'),
      rc('{"protocol": 1e30, "type": "novnc"}'),
      rc('{"protocol": 1e-7, "type": "novnc"}'),
      rc('{"protocol": true, "type": "novnc"}'),
      rc('{"protocol": false, "type": "novnc"}'),
      rc('{"protocol": {}, "type": "novnc"}'),
      rc('{"protocol": {"a": [1, 2.5, true, null, "b"]}, "type": "novnc"}'),
      // strings that are not quite the value: no trimming, no case folding
      rc('{"protocol": "VNC", "type": "novnc"}'),
      rc('{"protocol": " vnc", "type": "novnc"}'),
      rc('{"protocol": "", "type": "novnc"}'),
      rc('{"protocol": "vnc\\u00e9\\u0000\'", "type": "novnc"}'),
      rc('{"protocol": "it\'s \\"x\\"\\t\\\\", "type": "novnc"}'),
      // shape
      rc('"vnc"'),
      rc('null'),
      rc('[]'),
      rc('[{"protocol": "vnc", "type": "novnc"}]'),
      rc('{}'),
      rc('{"type": "novnc"}'),
      rc('{"type": "novnc", "extra": 1, "more": 2}'),
      rc('{"protocol": "vnc", "type": "novnc", "token": "mine"}'),
      `${rc('{"protocol": "vnc", "type": "novnc"}').slice(0, -1)}, "z": 1, "a": 2}`,
      // which error comes first: jsonschema's order, not Ajv's
      `${rc('{"protocol": "x", "type": ["y"]}').slice(0, -1)}, "e": 1}`,
      rc('{"protocol": "mks", "type": ["y"]}'),
      rc('{"type": 5, "extra": 1}'),
      '{"remote_console": {"protocol": "vnc", "type": "novnc"}, "remote_console": {"protocol": ["vnc"], "type": "novnc"}}',
      // bodies that are no object
      '[]',
      '"remote_console"',
      '42',
      'null',
      'true',
      '{}',
      '',
      // and what Nova takes
      rc('{"protocol": "vnc", "type": "novnc"}'),
      rc('{"type": "novnc", "protocol": "vnc"}'),
      rc('{"protocol": "mks", "type": "webmks"}'),
      rc('{"protocol": "spice", "type": "spice-direct"}'),
    ];
    // Nova 26's last microversion is 2.93: 2.99's spice-direct is checked in remote-consoles.test.ts
    for (const version of ['2.5', '2.6', '2.7', '2.8', '2.93']) {
      it(`answers as Nova does at ${version}, body for body`, async () => {
        for (const body of bodies) sameVerdict(`${version} ${body}`, await both('POST', `/servers/${SERVER}/remote-consoles`, version, body));
      });
    }

    it('refuses the issue\'s "protocol": ["vnc"] in Nova\'s words, and mints for "vnc"', async () => {
      const { porthole, nova: n } = await both('POST', `/servers/${SERVER}/remote-consoles`, '2.6', rc('{"protocol": ["vnc"], "type": "novnc"}'));
      assert.deepEqual(n.body, { badRequest: { code: 400, message: "Invalid input for field/attribute protocol. Value: ['vnc']. ['vnc'] is not of type 'string'" } });
      assert.deepEqual(porthole.body, n.body);
      const good = await both('POST', `/servers/${SERVER}/remote-consoles`, '2.6', rc('{"protocol": "vnc", "type": "novnc"}'));
      assert.equal(good.porthole.status, 200, good.porthole.text);
      assert.equal(good.nova.status, 404, 'Nova got past its schema to the (absent) instance');
    });
  });

  describe('POST /servers/{id}/action (os-get*Console)', () => {
    const bodies = [
      '{"os-getVNCConsole": {"type": ["novnc"]}}',
      '{"os-getVNCConsole": {"type": null}}',
      '{"os-getVNCConsole": {"type": 5}}',
      '{"os-getVNCConsole": {"type": true}}',
      '{"os-getVNCConsole": {"type": "NOVNC"}}',
      '{"os-getVNCConsole": {"type": "novnc", "a": 1}}',
      '{"os-getVNCConsole": {}}',
      '{"os-getVNCConsole": []}',
      '{"os-getVNCConsole": null}',
      '{"os-getVNCConsole": "novnc"}',
      '{"os-getVNCConsole": ["novnc"]}',
      '{"os-getSPICEConsole": {"type": ["spice-html5"]}}',
      '{"os-getRDPConsole": {"type": null}}',
      '{"os-getSerialConsole": {"type": 5}}',
      // finding the action (wsgi.action_peek)
      '{"os-getVNCConsole": {"type": "novnc"}, "os-getSPICEConsole": {"type": "spice-html5"}}',
      '{"nope": 1}',
      '{"__proto__": {"type": "novnc"}}',
      '{}',
      '[]',
      '[{"os-getVNCConsole": {"type": "novnc"}}]',
      '"ab"',
      '"a"',
      '42',
      'null',
      'true',
      '',
      // and what Nova takes
      '{"os-getVNCConsole": {"type": "novnc"}}',
      '{"os-getSPICEConsole": {"type": "spice-html5"}}',
    ];
    for (const version of ['2.1', '2.5', '2.6']) {
      it(`answers as Nova does at ${version}, body for body`, async () => {
        for (const body of bodies) sameVerdict(`${version} ${body}`, await both('POST', `/servers/${SERVER}/action`, version, body));
      });
    }
  });

  describe('GET /servers query parameters', () => {
    const queries = ['?limit=abc', '?limit=-1', '?limit=', '?limit=1.5', '?limit=true', '?limit=%20', '?limit=0x10', '?limit=1&limit=x', '?limit=abc&limit=x', '?limit=1&limit=2', '?limit=5', '?limit=99999999999999999999', '?marker=a&marker=b', '?name=a&name=b', '?name=strict'];
    for (const version of ['2.1', '2.75']) {
      it(`answers as Nova does at ${version}, query for query: each value a string, never coerced`, async () => {
        for (const q of queries) sameVerdict(`${version} ${q}`, await both('GET', `/servers${q}`, version));
      });
    }
  });

  it('quotes refused values as Nova does (Python\'s str() and repr() of what json.loads made)', async () => {
    const schema = { type: 'object', properties: { v: { enum: ['never'] } } };
    const values = [
      '"plain"', '""', '"it\'s"', '"say \\"hi\\""', '"both \' and \\""', '"back\\\\slash"', '"tab\\tnew\\nline\\rcr"',
      '"\\u0000\\u001f\\u007f\\u0085"', '"nbsp\\u00a0zwsp\\u200bls\\u2028"', '"caf\\u00e9 \\u4e2d \\ud83d\\ude00"', '"lone \\ud800"',
      '0', '-7', '5900', '2.5', '-0.125', '123456.789', '0.0001', '0.00001', '1e-7', '1e16', '1.5e300', '1e999', '-1e999',
      'null', 'true', 'false', '[]', '{}', '[1, [2, [3, []]]]', '{"a": {"b": null}, "c": [true, "d"]}', '{"it\'s": "x"}',
    ];
    for (const v of values) {
      const body = `{"v": ${v}}`;
      const { message } = await nova.ask({ schema, body });
      assert.equal(novaSchemaMessage(schema, JSON.parse(body), 'body'), message, body);
    }
  });

  describe('admin API bodies, held to Nova\'s validator on Porthole\'s schema', () => {
    let schema: unknown;
    before(async () => {
      const doc = (await gw.call('GET', '/porthole/v1/openapi.json')).body;
      schema = draft4(doc.paths['/porthole/v1/servers'].post.requestBody.content['application/json'].schema);
      assert.deepEqual(draft4(doc.paths['/porthole/v1/servers/{id}'].put.requestBody.content['application/json'].schema), schema);
    });

    const bodies = [
      // the issue's, and its kin
      '{"name": "x", "vnc": {"host": "h", "port": "5900"}}',
      '{"name": "x", "vnc": {"host": "h", "port": [5900]}}',
      '{"name": "x", "vnc": {"host": "h", "port": true}}',
      '{"name": "x", "vnc": {"host": "h", "port": null}}',
      '{"name": "x", "vnc": {"host": "h", "port": 5900.5}}',
      '{"name": "x", "vnc": {"host": "h", "port": 1e999}}',
      '{"name": "x", "vnc": {"host": "h", "port": {}}}',
      '{"name": "x", "vnc": {"host": "h", "port": 0}}',
      '{"name": "x", "vnc": {"host": "h", "port": 65536}}',
      '{"name": "x", "vnc": {"host": "h", "port": -1}}',
      '{"name": "x", "vnc": {"host": 5, "port": 5900}}',
      '{"name": "x", "vnc": {"host": null, "port": 5900}}',
      '{"name": "x", "vnc": {"host": ["h"], "port": 5900}}',
      '{"name": "x", "vnc": {"host": "", "port": 5900}}',
      '{"name": "x", "vnc": {"host": "h"}}',
      '{"name": "x", "vnc": {"host": "h", "port": 5900, "password": "p"}}',
      '{"name": "x", "vnc": "h:5900"}',
      '{"name": "x", "vnc": [{"host": "h", "port": 5900}]}',
      '{"name": 42}',
      '{"name": null}',
      '{"name": ["x"]}',
      '{"name": true}',
      '{"name": ""}',
      '{}',
      '{"name": "x", "project_id": 5}',
      '{"name": "x", "project_id": ["p"]}',
      '{"name": "x", "status": null}',
      '{"name": "x", "status": 1}',
      '{"name": "x", "status": ""}',
      '{"name": "x", "id": 5}',
      '{"name": "x", "id": null}',
      '{"name": "x", "backend_auth": "vnc"}',
      '{"name": "x", "backend_auth": []}',
      '{"name": "x", "backend_auth": {"auth_schemes": "vnc"}}',
      '{"name": "x", "backend_auth": {"auth_schemes": []}}',
      '{"name": "x", "backend_auth": {"auth_schemes": ["vnc", "vnc"]}}',
      '{"name": "x", "backend_auth": {"auth_schemes": ["vnc", "none", "vencrypt", "vnc"]}}',
      '{"name": "x", "backend_auth": {"auth_schemes": ["telnet"]}}',
      '{"name": "x", "backend_auth": {"auth_schemes": [5]}}',
      '{"name": "x", "backend_auth": {"auth_schemes": [null]}}',
      '{"name": "x", "backend_auth": {"vnc_password": 5}}',
      '{"name": "x", "backend_auth": {"vnc_password": ""}}',
      '{"name": "x", "backend_auth": {"vnc_username": false}}',
      '{"name": "x", "backend_auth": {"tls_server_name": ""}}',
      '{"name": "x", "backend_auth": {"password": "p"}}',
      '{"name": "x", "serial": {"host": "h"}}',
      '{"name": "x", "serial": {"host": "h", "port": "4555"}}',
      '{"name": "x", "serial": "h:4555"}',
      '{"name": "x", "serial": {"host": "h", "port": 4555, "tls_port": 4556}}',
      '{"name": "x", "spice": {"host": "h", "port": 5930, "tls_port": 0}}',
      '{"name": "x", "spice": {"host": "h", "port": 5930, "tls_port": "5931"}}',
      '{"name": "x", "spice": {"host": "", "port": 5930}}',
      '{"name": "x", "spice": {"port": 5930, "tls": 5931}}',
      '{"name": "x", "b": 1, "a": 2}',
      '{"name": 5, "b": 1}',
      '[]',
      '"x"',
      '42',
      'null',
      '',
      // and what is taken, nulls where the schema allows them
      '{"name": "ok-1"}',
      '{"name": "ok-2", "vnc": {"host": "h", "port": 5900}}',
      '{"name": "ok-3", "project_id": null, "vnc": null, "backend_auth": null}',
      '{"name": "ok-4", "backend_auth": {"auth_schemes": null, "vnc_username": null, "vnc_password": null, "tls_server_name": null}}',
      '{"name": "ok-5", "status": "SHUTOFF", "backend_auth": {"auth_schemes": ["vencrypt", "vnc"], "vnc_password": "s"}}',
      '{"name": "ok-6", "vnc": null, "serial": {"host": "h", "port": 4555}, "spice": {"host": "::1", "port": 5930, "tls_port": 5931}}',
      '{"name": "ok-7", "serial": null, "spice": {"host": "h", "port": 5930, "tls_port": null}}',
    ];

    for (const [method, path] of [['POST', '/porthole/v1/servers'], ['PUT', `/porthole/v1/servers/${PUT_SERVER}`]] as const) {
      it(`${method} ${path.replace(PUT_SERVER, '{id}')}: refuses in Nova's validator's words what it refuses, takes what it takes`, async () => {
        for (const body of bodies) {
          const { message } = await nova.ask({ schema, body });
          const r = await gw.call(method, path, { token: 'admin', headers: { 'Content-Type': 'application/json' }, body });
          if (message === null) {
            assert.ok(r.status === 200 || r.status === 201, `${body}: Nova's validator takes it, Porthole answered ${r.status} ${r.text}`);
            if (method === 'POST') assert.equal((await gw.call('DELETE', `/porthole/v1/servers/${r.body.server.id}`, { token: 'admin' })).status, 204);
          } else {
            assert.deepEqual({ status: r.status, body: r.body }, { status: 400, body: { badRequest: { code: 400, message } } }, body);
          }
        }
      });
    }

    it('keeps the issue\'s "port": "5900" out of the inventory, and takes 5900', async () => {
      const bad = await gw.call('POST', '/porthole/v1/servers', { token: 'admin', body: { name: 'port-string', vnc: { host: 'h', port: '5900' } } });
      assert.deepEqual(bad.body, { badRequest: { code: 400, message: "Invalid input for field/attribute port. Value: 5900. '5900' is not of type 'integer'" } });
      assert.ok(!(await gw.gateway.stores.inventory.list()).some((s) => s.name === 'port-string'));
      const good = await gw.call('POST', '/porthole/v1/servers', { token: 'admin', body: { name: 'port-int', vnc: { host: 'h', port: 5900 } } });
      assert.equal(good.status, 201, good.text);
      assert.deepEqual(good.body.server.vnc, { host: 'h', port: 5900 });
    });
  });
});
