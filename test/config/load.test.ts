import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseIni } from '../../src/config/ini.ts';
import { configFlag, envName, loadConfig, type RawSetting } from '../../src/config/load.ts';
import { isGatewayError } from '../../src/errors.ts';
import { tempDir } from '../support/gateway.ts';

/** Turns command-line words into flag settings the way the CLI does, through `configFlag`. */
function cliFlags(...argv: string[]): RawSetting[] {
  const out: RawSetting[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const opt = configFlag(name);
    assert.ok(opt, `--${name} is not an option flag`);
    const bare = eq < 0 && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'));
    const raw = eq > 0 ? arg.slice(eq + 1) : bare ? String(!opt.negated) : argv[++i]!;
    out.push({ section: opt.section, name: opt.name, raw, source: `flag --${name}` });
  }
  return out;
}

/** Asserts that `fn` throws a CONFIG_INVALID GatewayError whose message matches every pattern. */
function assertConfigError(fn: () => unknown, ...patterns: (RegExp | string)[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isGatewayError(err), `expected a GatewayError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `${JSON.stringify(err.message)} does not name ${JSON.stringify(p)}`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

describe('INI parsing', () => {
  it('reads sections, "=" and ":" assignments, and skips # and ; comment lines', () => {
    const doc = parseIni('# top comment\n[DEFAULT]\ndebug = true\n; another\n[vnc]\nnovncproxy_port: 6081\n#novncproxy_host = 1.2.3.4\n');
    assert.deepEqual([...doc.keys()], ['DEFAULT', 'vnc']);
    assert.deepEqual(doc.get('DEFAULT')!.get('debug'), [{ value: 'true', line: 3 }]);
    assert.deepEqual(doc.get('vnc')!.get('novncproxy_port'), [{ value: '6081', line: 6 }]);
    assert.equal(doc.get('vnc')!.has('novncproxy_host'), false);
    assert.equal(doc.get('vnc')!.has('#novncproxy_host'), false);
  });

  it('splits at the first "=" or ":" so URLs keep their colons', () => {
    const doc = parseIni('[database]\nconnection = mysql+pymysql://nova:pw@db/nova\n[vnc]\nnovncproxy_base_url=http://h:6080/vnc_auto.html\n');
    assert.equal(doc.get('database')!.get('connection')![0]!.value, 'mysql+pymysql://nova:pw@db/nova');
    assert.equal(doc.get('vnc')!.get('novncproxy_base_url')![0]!.value, 'http://h:6080/vnc_auto.html');
  });

  it('joins indented continuation lines to the value before them, until a blank line', () => {
    const doc = parseIni('[console]\nallowed_origins = a.example.com,\n    b.example.com,\n\tc.example.com\n\n[vnc]\nenabled = true\n');
    assert.deepEqual(doc.get('console')!.get('allowed_origins'), [{ value: 'a.example.com,\nb.example.com,\nc.example.com', line: 2 }]);
    assert.deepEqual(doc.get('vnc')!.get('enabled'), [{ value: 'true', line: 7 }]);
  });

  it('strips one pair of matching quotes and keeps unmatched ones', () => {
    const doc = parseIni(`[s]\na = "quoted value"\nb = 'single'\nc = "mixed'\nd = ""\ne = "inner "quotes" kept"\n`);
    const v = (n: string) => doc.get('s')!.get(n)![0]!.value;
    assert.equal(v('a'), 'quoted value');
    assert.equal(v('b'), 'single');
    assert.equal(v('c'), `"mixed'`);
    assert.equal(v('d'), '');
    assert.equal(v('e'), 'inner "quotes" kept');
  });

  it('keeps every value of a repeated option, in file order, and merges a repeated section', () => {
    const doc = parseIni('[vnc]\nnovncproxy_port = 1\n[other]\nx = y\n[vnc]\nnovncproxy_port = 2\n');
    assert.deepEqual(doc.get('vnc')!.get('novncproxy_port'), [{ value: '1', line: 2 }, { value: '2', line: 6 }]);
  });

  it('reads CRLF files', () => {
    const doc = parseIni('[vnc]\r\nnovncproxy_port = 6090\r\n');
    assert.equal(doc.get('vnc')!.get('novncproxy_port')![0]!.value, '6090');
  });
});

describe('loadConfig', () => {
  let dir: string;
  let n = 0;
  const file = (text: string, name = `c${++n}.conf`): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  before(() => {
    dir = tempDir('porthole-config-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to Nova\'s values where Nova has the option', () => {
    const { config, provenance, files } = loadConfig();
    assert.equal(config.vnc.novncproxy_port, 6080);
    assert.equal(config.vnc.novncproxy_host, '0.0.0.0');
    assert.equal(config.vnc.novncproxy_base_url, 'http://127.0.0.1:6080/vnc_auto.html');
    assert.equal(config.vnc.enabled, true);
    assert.deepEqual(config.vnc.auth_schemes, ['none']);
    assert.equal(config.vnc.vencrypt_ca_certs, null);
    assert.equal(config.consoleauth.token_ttl, 600);
    assert.equal(config.DEFAULT.ssl_only, false);
    assert.equal(config.DEFAULT.cert, 'self.pem');
    assert.equal(config.DEFAULT.key, null);
    assert.equal(config.DEFAULT.web, '/usr/share/spice-html5');
    assert.equal(config.DEFAULT.osapi_compute_listen_port, 8774);
    assert.deepEqual(config.console.allowed_origins, []);
    assert.equal(provenance.size, 0);
    assert.deepEqual(files, []);
  });

  it('reads typed values from a file and records where each came from', () => {
    const f = file('[DEFAULT]\nssl_only = True\n\n[vnc]\nnovncproxy_port = 6090\nauth_schemes = vencrypt, none\n[consoleauth]\ntoken_ttl = 30\n[porthole]\nbackend_connect_timeout = 2.5\nlog_level = debug\n');
    const { config, provenance, files } = loadConfig({ files: [f] });
    assert.equal(config.DEFAULT.ssl_only, true);
    assert.equal(config.vnc.novncproxy_port, 6090);
    assert.deepEqual(config.vnc.auth_schemes, ['vencrypt', 'none']);
    assert.equal(config.consoleauth.token_ttl, 30);
    assert.equal(config.porthole.backend_connect_timeout, 2.5);
    assert.equal(config.porthole.log_level, 'debug');
    assert.equal(provenance.get('vnc.novncproxy_port'), `${f}:5`);
    assert.equal(provenance.get('DEFAULT.ssl_only'), `${f}:2`);
    assert.equal(provenance.has('vnc.novncproxy_host'), false);
    assert.deepEqual(files, [f]);
  });

  it('takes the last value of an option repeated in one file', () => {
    const f = file('[vnc]\nnovncproxy_port = 6081\nnovncproxy_port = 6082\n');
    const { config, provenance } = loadConfig({ files: [f] });
    assert.equal(config.vnc.novncproxy_port, 6082);
    assert.equal(provenance.get('vnc.novncproxy_port'), `${f}:3`);
  });

  it('accumulates a list option repeated in one file', () => {
    const f = file('[console]\nallowed_origins = a.example.com\nallowed_origins = b.example.com, c.example.com\n');
    assert.deepEqual(loadConfig({ files: [f] }).config.console.allowed_origins, ['a.example.com', 'b.example.com', 'c.example.com']);
  });

  it('splits a list continued over indented lines', () => {
    const f = file('[console]\nallowed_origins = a.example.com,\n    b.example.com\n');
    assert.deepEqual(loadConfig({ files: [f] }).config.console.allowed_origins, ['a.example.com', 'b.example.com']);
  });

  it('reads an empty value of an optional string as unset', () => {
    const f = file('[DEFAULT]\nkey =\n[vnc]\nvencrypt_ca_certs = ""\n');
    const { config } = loadConfig({ files: [f] });
    assert.equal(config.DEFAULT.key, null);
    assert.equal(config.vnc.vencrypt_ca_certs, null);
  });

  describe('precedence', () => {
    let a: string;
    let b: string;
    let confDir: string;

    before(() => {
      a = file('[vnc]\nnovncproxy_port = 1001\nnovncproxy_host = 10.0.0.1\n[consoleauth]\ntoken_ttl = 101\n[DEFAULT]\nosapi_compute_listen_port = 9001\n');
      b = file('[vnc]\nnovncproxy_port = 1002\n[consoleauth]\ntoken_ttl = 102\n');
      confDir = join(dir, 'nova.conf.d');
      mkdirSync(confDir);
      // read in name order: 20 after 10; files not ending .conf are not read
      writeFileSync(join(confDir, '20-late.conf'), '[consoleauth]\ntoken_ttl = 202\n');
      writeFileSync(join(confDir, '10-early.conf'), '[consoleauth]\ntoken_ttl = 201\n[DEFAULT]\nosapi_compute_listen_port = 9201\n[vnc]\nnovncproxy_host = 10.0.0.2\n');
      writeFileSync(join(confDir, '30-ignored.conf.bak'), '[consoleauth]\ntoken_ttl = 999\n');
      mkdirSync(join(confDir, '40-a-directory.conf'));
    });

    it('lets a later --config-file override an earlier one', () => {
      const { config } = loadConfig({ files: [a, b] });
      assert.equal(config.vnc.novncproxy_port, 1002);
      assert.equal(config.vnc.novncproxy_host, '10.0.0.1');
      assert.equal(loadConfig({ files: [b, a] }).config.vnc.novncproxy_port, 1001);
    });

    it('lets --config-dir files, in name order, override --config-file files', () => {
      const { config, provenance, files } = loadConfig({ files: [a, b], dirs: [confDir] });
      assert.equal(config.consoleauth.token_ttl, 202);
      assert.equal(provenance.get('consoleauth.token_ttl'), `${join(confDir, '20-late.conf')}:2`);
      assert.equal(config.DEFAULT.osapi_compute_listen_port, 9201);
      assert.equal(config.vnc.novncproxy_host, '10.0.0.2');
      assert.equal(config.vnc.novncproxy_port, 1002);
      assert.deepEqual(files, [a, b, join(confDir, '10-early.conf'), join(confDir, '20-late.conf')]);
    });

    it('lets PORTHOLE_* environment variables override files', () => {
      const env = { PORTHOLE_CONSOLEAUTH_TOKEN_TTL: '303', PORTHOLE_OSAPI_COMPUTE_LISTEN_PORT: '9303', PORTHOLE_PORTHOLE_DEMO: 'true', UNRELATED: 'x' };
      const { config, provenance } = loadConfig({ files: [a, b], dirs: [confDir], env });
      assert.equal(config.consoleauth.token_ttl, 303);
      assert.equal(config.DEFAULT.osapi_compute_listen_port, 9303);
      assert.equal(config.porthole.demo, true);
      assert.equal(config.vnc.novncproxy_port, 1002);
      assert.equal(provenance.get('consoleauth.token_ttl'), 'environment PORTHOLE_CONSOLEAUTH_TOKEN_TTL');
    });

    it('lets command-line flags override everything', () => {
      const env = { PORTHOLE_CONSOLEAUTH_TOKEN_TTL: '303', PORTHOLE_VNC_NOVNCPROXY_PORT: '1303' };
      const flags = cliFlags('--consoleauth-token_ttl', '404', '--vnc-novncproxy_port=1404');
      const { config, provenance } = loadConfig({ files: [a, b], dirs: [confDir], env, flags });
      assert.equal(config.consoleauth.token_ttl, 404);
      assert.equal(config.vnc.novncproxy_port, 1404);
      assert.equal(config.vnc.novncproxy_host, '10.0.0.2');
      assert.equal(provenance.get('vnc.novncproxy_port'), 'flag --vnc-novncproxy_port');
    });

    it('refuses a --config-dir that cannot be read', () => {
      assertConfigError(() => loadConfig({ dirs: [join(dir, 'no-such-dir')] }), '--config-dir', 'no-such-dir');
    });

    it('refuses a --config-file that cannot be read', () => {
      assertConfigError(() => loadConfig({ files: [join(dir, 'missing.conf')] }), 'missing.conf');
    });
  });

  describe('environment names', () => {
    it('name [DEFAULT] options without a section and others with it', () => {
      assert.equal(envName('DEFAULT', 'ssl_only'), 'PORTHOLE_SSL_ONLY');
      assert.equal(envName('vnc', 'novncproxy_port'), 'PORTHOLE_VNC_NOVNCPROXY_PORT');
      assert.equal(envName('porthole', 'demo'), 'PORTHOLE_PORTHOLE_DEMO');
    });
  });

  describe('Nova flag forms', () => {
    it('maps --SECTION-OPTION to the option', () => {
      assert.deepEqual(configFlag('vnc-novncproxy_port'), { section: 'vnc', name: 'novncproxy_port', negated: false });
      assert.deepEqual(configFlag('database-connection'), { section: 'database', name: 'connection', negated: false });
      assert.deepEqual(configFlag('consoleauth-token_ttl'), { section: 'consoleauth', name: 'token_ttl', negated: false });
      assert.deepEqual(configFlag('vnc-novncproxy-port'), { section: 'vnc', name: 'novncproxy_port', negated: false });
    });

    it('maps a [DEFAULT] option to a flag without a section', () => {
      assert.deepEqual(configFlag('ssl_only'), { section: 'DEFAULT', name: 'ssl_only', negated: false });
      assert.deepEqual(configFlag('web'), { section: 'DEFAULT', name: 'web', negated: false });
    });

    it('maps --SECTION-noOPTION to a negated boolean, and only a boolean', () => {
      assert.deepEqual(configFlag('vnc-noenabled'), { section: 'vnc', name: 'enabled', negated: true });
      assert.deepEqual(configFlag('nossl_only'), { section: 'DEFAULT', name: 'ssl_only', negated: true });
      assert.equal(configFlag('vnc-nonovncproxy_host'), undefined);
    });

    it('knows no flag for an option it does not have', () => {
      assert.equal(configFlag('vnc-server_listen'), undefined);
      assert.equal(configFlag('novncproxy_port'), undefined);
      assert.equal(configFlag('bogus'), undefined);
    });

    it('gives a bare boolean flag its value and a negated one the opposite', () => {
      const { config } = loadConfig({ flags: cliFlags('--ssl_only', '--vnc-noenabled', '--debug') });
      assert.equal(config.DEFAULT.ssl_only, true);
      assert.equal(config.vnc.enabled, false);
      assert.equal(config.DEFAULT.debug, true);
    });

    it('lets a flag turn off a boolean that a file turned on', () => {
      const f = file('[vnc]\nenabled = true\n[DEFAULT]\nssl_only = yes\n');
      const { config } = loadConfig({ files: [f], flags: cliFlags('--vnc-noenabled', '--nossl_only') });
      assert.equal(config.vnc.enabled, false);
      assert.equal(config.DEFAULT.ssl_only, false);
    });
  });

  describe('bad values', () => {
    it('names the file and line, section, option, value and what was expected', () => {
      const f = file('[DEFAULT]\ndebug = false\n\n[vnc]\nnovncproxy_port = abc\n');
      assertConfigError(() => loadConfig({ files: [f] }), `${f}:5`, '[vnc] novncproxy_port', '"abc"', 'expected a port number');
    });

    it('refuses a port out of range', () => {
      const f = file('[vnc]\nnovncproxy_port = 70000\n');
      assertConfigError(() => loadConfig({ files: [f] }), `${f}:2`, '[vnc] novncproxy_port', 'between 0 and 65535');
    });

    it('refuses a boolean that is not one', () => {
      const f = file('[DEFAULT]\nssl_only = maybe\n');
      assertConfigError(() => loadConfig({ files: [f] }), `${f}:2`, '[DEFAULT] ssl_only', 'expected a boolean');
    });

    it('refuses a token_ttl below 1 and one that is not a whole number', () => {
      assertConfigError(() => loadConfig({ files: [file('[consoleauth]\ntoken_ttl = 0\n')] }), '[consoleauth] token_ttl', 'at least 1');
      assertConfigError(() => loadConfig({ files: [file('[consoleauth]\ntoken_ttl = 1.5\n')] }), '[consoleauth] token_ttl', 'expected an integer');
    });

    it('refuses a base URL that is not an absolute http(s) URL', () => {
      assertConfigError(() => loadConfig({ files: [file('[vnc]\nnovncproxy_base_url = /vnc_auto.html\n')] }), '[vnc] novncproxy_base_url', 'absolute URL');
      assertConfigError(() => loadConfig({ files: [file('[vnc]\nnovncproxy_base_url = ftp://h/vnc_auto.html\n')] }), '[vnc] novncproxy_base_url', 'http, https, ws or wss');
    });

    it('refuses a value outside a choice, listing the choices', () => {
      assertConfigError(() => loadConfig({ files: [file('[porthole]\nlog_level = loud\n')] }), '[porthole] log_level', 'trace, debug, info, warn, error, silent');
    });

    it('names the environment variable or flag a bad value came from', () => {
      assertConfigError(() => loadConfig({ env: { PORTHOLE_VNC_NOVNCPROXY_PORT: 'x' } }), 'environment PORTHOLE_VNC_NOVNCPROXY_PORT', '[vnc] novncproxy_port');
      assertConfigError(() => loadConfig({ flags: cliFlags('--consoleauth-token_ttl', 'soon') }), 'flag --consoleauth-token_ttl', '[consoleauth] token_ttl', '"soon"');
    });

    it('names the file and line of an INI syntax error', () => {
      const f = file('[vnc]\nthis line has no separator\n');
      assertConfigError(() => loadConfig({ files: [f] }), `${f}:2`);
      const g = file('novncproxy_port = 1\n[vnc]\n');
      assertConfigError(() => loadConfig({ files: [g] }), `${g}:1`, 'outside of any [section]');
      const h = file('[vnc\n');
      assertConfigError(() => loadConfig({ files: [h] }), `${h}:1`, 'section header');
    });
  });

  describe('unknown options', () => {
    it('ignores options and sections it does not know outside [porthole]', () => {
      const f = file('[DEFAULT]\ntransport_url = rabbit://openstack:pw@controller\nmy_ip = not-an-ip-but-not-ours\n[vnc]\nserver_listen = $my_ip\n[glance]\napi_servers = http://controller:9292\n');
      const { config, provenance } = loadConfig({ files: [f] });
      assert.equal(config.vnc.novncproxy_port, 6080);
      assert.equal(provenance.size, 0);
      assert.equal((config.vnc as Record<string, unknown>)['server_listen'], undefined);
      assert.equal((config as Record<string, unknown>)['glance'], undefined);
    });

    it('refuses an unknown [porthole] option, naming it and the closest known one', () => {
      const f = file('[porthole]\ndemo = true\ndemo_prot = 5900\n');
      assertConfigError(() => loadConfig({ files: [f] }), `${f}:3: [porthole] demo_prot is not an option of [porthole]; did you mean demo_port?`);
    });
  });

  it('loads a real-looking nova.conf', () => {
    const f = file(NOVA_CONF, 'nova.conf');
    const { config, provenance, warnings } = loadConfig({ files: [f] });
    assert.deepEqual(warnings, []);
    assert.equal(config.DEFAULT.debug, false);
    assert.equal(config.DEFAULT.ssl_only, false);
    assert.equal(config.DEFAULT.cert, '/etc/nova/ssl/console.pem');
    assert.equal(config.DEFAULT.key, '/etc/nova/ssl/console.key');
    assert.equal(config.DEFAULT.osapi_compute_listen, '10.0.0.11');
    assert.equal(config.DEFAULT.web, '/usr/share/novnc');
    assert.equal(config.vnc.enabled, true);
    assert.equal(config.vnc.novncproxy_host, '0.0.0.0');
    assert.equal(config.vnc.novncproxy_port, 6080);
    assert.equal(config.vnc.novncproxy_base_url, 'https://cloud.example.com:6080/vnc_auto.html');
    assert.deepEqual(config.vnc.auth_schemes, ['vencrypt', 'none']);
    assert.equal(config.vnc.vencrypt_ca_certs, '/etc/pki/nova-novncproxy/ca-cert.pem');
    assert.equal(config.vnc.vencrypt_client_cert, '/etc/pki/nova-novncproxy/client-cert.pem');
    assert.equal(config.vnc.vencrypt_client_key, '/etc/pki/nova-novncproxy/client-key.pem');
    assert.equal(config.consoleauth.token_ttl, 900);
    assert.equal(config.database.connection, 'mysql+pymysql://nova:N0va;pass#1@controller/nova_cell1?charset=utf8');
    assert.deepEqual(config.console.allowed_origins, ['portal.example.com', 'horizon.example.com']);
    assert.match(provenance.get('database.connection')!, /nova\.conf:\d+$/);
  });
});

const NOVA_CONF = `# nova.conf, as an install guide and a deployment tool leave it
[DEFAULT]
# debug = true
debug = False
log_dir = /var/log/nova
state_path = /var/lib/nova
my_ip = 10.0.0.11
transport_url = rabbit://openstack:RABBIT_PASS@controller:5672/
enabled_apis = osapi_compute,metadata
osapi_compute_listen = 10.0.0.11
osapi_compute_workers = 4
use_neutron = True
firewall_driver = nova.virt.firewall.NoopFirewallDriver
ssl_only = false
cert = /etc/nova/ssl/console.pem
key = /etc/nova/ssl/console.key
web = /usr/share/novnc
instance_name_template = instance-%08x

[api]
auth_strategy = keystone

[api_database]
connection = mysql+pymysql://nova:NOVA_DBPASS@controller/nova_api

[database]
connection = mysql+pymysql://nova:N0va;pass#1@controller/nova_cell1?charset=utf8
max_retries = -1

[consoleauth]
token_ttl = 900
enforce_session_timeout = true

[console]
allowed_origins = portal.example.com,horizon.example.com

[keystone_authtoken]
www_authenticate_uri = http://controller:5000/
auth_url = http://controller:5000/
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = "NOVA_PASS"

[vnc]
enabled = true
server_listen = $my_ip
server_proxyclient_address = $my_ip
novncproxy_host = 0.0.0.0
novncproxy_port = 6080
novncproxy_base_url = https://cloud.example.com:6080/vnc_auto.html
auth_schemes = vencrypt,none
vencrypt_client_key = /etc/pki/nova-novncproxy/client-key.pem
vencrypt_client_cert = /etc/pki/nova-novncproxy/client-cert.pem
vencrypt_ca_certs = /etc/pki/nova-novncproxy/ca-cert.pem

[glance]
api_servers = http://controller:9292

[oslo_concurrency]
lock_path = /var/lib/nova/tmp

[placement]
region_name = RegionOne
auth_type = password
auth_url = http://controller:5000/v3
password = PLACEMENT_PASS

[libvirt]
virt_type = kvm
images_type = rbd
`;
