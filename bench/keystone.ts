/**
 * @module bench/keystone
 * What `[api] auth_strategy = keystone` costs a compute API request, against a real Keystone
 * (Debian's python3-keystone on loopback, test/support/keystone.ts: the WSGI reference server,
 * one request at a time, SQLite, Fernet tokens). One request after another, `GET /v2.1/servers`
 * on an empty inventory, timed from the client's send to the last byte: with noauth2 (no
 * authentication at all: the floor), with a Keystone token Porthole has cached (warm), with a
 * token Porthole sees for the first time (cold: one `GET /v3/auth/tokens` to Keystone, with the
 * service token already held; the WSGI reference server closes each connection after its answer), and Keystone's own validation
 * asked directly with fetch (what cold adds, seen from outside). p50 and p99 of each
 * (`npm run bench:keystone -- COLD WARM`; default 200 cold tokens, 2000 warm requests).
 * Both APIs are warmed up with 1000 requests each first. Writes its section of bench/RESULTS.md between `<!-- keystone -->` markers.
 */
import { cpus, loadavg } from 'node:os';
import { startApi, type TestApi } from '../test/support/api.ts';
import { startKeystone, type KeystoneUser, type TestKeystone } from '../test/support/keystone.ts';
import { writeSection } from './results-file.ts';

const COLD = Number(process.argv[2] ?? 200);
const WARM = Number(process.argv[3] ?? 2000);
const member: KeystoneUser = { name: 'bench-member', password: 'bench-member-pw', project: 'bench' };
const SERVICE_PASSWORD = 'bench-porthole-pw';

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

async function timed(n: number, once: (i: number) => Promise<number>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    const status = await once(i);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (status !== 200) throw new Error(`request ${i} answered ${status}`);
  }
  return times.sort((a, b) => a - b);
}

let ks: TestKeystone | undefined;
let keystoneApi: TestApi | undefined;
let noauthApi: TestApi | undefined;
try {
  ks = await startKeystone();
  await ks.batch([
    'project create --domain default bench -f value -c id',
    'project create --domain default service -f value -c id',
    'role create service -f value -c id',
    `user create --domain default --password ${member.password} ${member.name} -f value -c id`,
    `user create --domain default --password ${SERVICE_PASSWORD} porthole -f value -c id`,
    `role add --project bench --user ${member.name} member`,
    'role add --project service --user porthole service',
  ]);
  keystoneApi = await startApi({
    'api.auth_strategy': 'keystone',
    'keystone_authtoken.auth_url': ks.url,
    'keystone_authtoken.username': 'porthole',
    'keystone_authtoken.password': SERVICE_PASSWORD,
    'keystone_authtoken.user_domain_name': 'Default',
    'keystone_authtoken.project_name': 'service',
    'keystone_authtoken.project_domain_name': 'Default',
    'porthole.log_level': 'warn',
  });
  noauthApi = await startApi({ 'porthole.log_level': 'warn' });
  const cold: string[] = [];
  for (let i = 0; i < COLD + 1; i++) cold.push((await ks.issue(member)).token);
  const direct: string[] = [];
  for (let i = 0; i < COLD; i++) direct.push((await ks.issue(member)).token);
  // the first request also fetches Porthole's service token: warm-up, not measured
  const first = cold.shift()!;
  await keystoneApi.call('GET', '/v2.1/servers', { token: first });
  const service = (await ks.issue({ name: 'porthole', password: SERVICE_PASSWORD, project: 'service' })).token;

  const api = keystoneApi;
  // both APIs (and the client) warmed up before any timing: the first thousand requests of a process run cold code
  await timed(1000, async () => (await noauthApi!.call('GET', '/v2.1/servers', { token: 'bench:bench' })).status);
  await timed(1000, async () => (await api.call('GET', '/v2.1/servers', { token: first })).status);
  const results: [string, number[]][] = [];
  results.push(['noauth2 (no authentication)', await timed(WARM, async () => (await noauthApi!.call('GET', '/v2.1/servers', { token: 'bench:bench' })).status)]);
  results.push(['keystone, token cached (warm)', await timed(WARM, async () => (await api.call('GET', '/v2.1/servers', { token: first })).status)]);
  results.push(['keystone, token first seen (cold)', await timed(COLD, async (i) => (await api.call('GET', '/v2.1/servers', { token: cold[i]! })).status)]);
  results.push(['Keystone GET /v3/auth/tokens, asked directly', await timed(COLD, async (i) => (await fetch(`${ks!.url}/auth/tokens?nocatalog`, { headers: { 'X-Auth-Token': service, 'X-Subject-Token': direct[i]! } })).status)]);

  const rows = results.map(([name, t]) => `| ${name} | ${t.length} | ${quantile(t, 0.5).toFixed(2)} | ${quantile(t, 0.99).toFixed(2)} |`);
  for (const row of rows) process.stdout.write(`${row}\n`);
  const section = [
    '<!-- keystone -->',
    `## Keystone token validation (${new Date().toISOString().slice(0, 10)}, \`npm run bench:keystone -- ${COLD} ${WARM}\`)`,
    '',
    `\`GET /v2.1/servers\` (empty inventory) one after another from the same process, send to last byte; Node ${process.version},`,
    `${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end. Keystone is Debian's python3-keystone`,
    '(keystone-wsgi-public: the WSGI reference server, a connection per request, SQLite, Fernet) on loopback; "cold" is one',
    'Keystone validation per request, the service token already held; "warm" is a hit in Porthole\'s cache (token_cache_time).',
    'Both APIs warmed up with 1000 requests first; noauth2 and warm differ by noise: the cache lookup is one SHA-256 and a Map hit.',
    '',
    '| case | requests | p50 ms | p99 ms |',
    '|---|---|---|---|',
    ...rows,
    '<!-- /keystone -->',
  ].join('\n');
  writeSection('<!-- keystone -->', '<!-- /keystone -->', `${section}\n`);
} finally {
  await keystoneApi?.close();
  await noauthApi?.close();
  await ks?.close();
}
