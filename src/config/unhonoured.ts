/**
 * @module config/unhonoured
 * The Nova options a nova.conf or a Nova daemon's command line may set that Porthole accepts but
 * cannot do: websockify's `daemon`, `source_is_ipv6`, oslo.log's
 * `log_config_append` (a Python logging configuration) and the Python remote debugger of
 * `[remote_debug]`, and, when the API authenticates with Keystone, keystonemiddleware's options
 * of `[keystone_authtoken]` that Porthole has no use for (memcached, X-Service-Token roles, the
 * catalog lookup of the identity endpoint). Refusing them would break the init scripts and
 * nova.conf files that set them; ignoring them silently would hide a difference, so each one set
 * gets one warning line, naming where it was set and what to do instead, for the daemon to log
 * once at start. Secrets are named, never quoted.
 */
import type { LoadedConfig } from './load.ts';

interface Unhonoured {
  readonly section: 'DEFAULT' | 'remote_debug' | 'keystone_authtoken';
  readonly name: string;
  /** Whether the value asks for something Porthole does not do (`daemon = false` asks nothing); `set`: given explicitly, not the default. */
  readonly asks: (value: unknown, set: boolean) => boolean;
  readonly instead: string;
  /** Only matters with this config (keystonemiddleware's options: only with `[api] auth_strategy = keystone`). */
  readonly when?: (config: LoadedConfig['config']) => boolean;
  /** A secret: the line says it is set, never what it is. */
  readonly secret?: boolean;
}

const isSet = (v: unknown) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0);
const keystone = (config: LoadedConfig['config']) => config.api.auth_strategy === 'keystone';
const noMemcached = 'Porthole keeps validated tokens in each process\'s memory for token_cache_time; no memcached is used';
const catalog = 'Porthole validates tokens at [keystone_authtoken] auth_url as given, without looking the identity endpoint up in the catalog';

const UNHONOURED: readonly Unhonoured[] = [
  { section: 'DEFAULT', name: 'daemon', asks: (v) => v === true, instead: 'Porthole always runs in the foreground; start it under systemd or start-stop-daemon --background' },
  { section: 'DEFAULT', name: 'source_is_ipv6', asks: (v) => v === true, instead: 'Porthole listens on the address its *_host option names, IPv4 or IPv6 (e.g. [vnc] novncproxy_host = ::)' },
  { section: 'DEFAULT', name: 'log_config_append', asks: isSet, instead: 'Porthole cannot read a Python logging configuration; it logs as log_file, log_dir, use_json, use_journal and use_syslog say' },
  { section: 'remote_debug', name: 'host', asks: isSet, instead: 'Porthole is not Python and has no remote debugger to attach; use node --inspect' },
  { section: 'remote_debug', name: 'port', asks: isSet, instead: 'Porthole is not Python and has no remote debugger to attach; use node --inspect' },
  { section: 'keystone_authtoken', name: 'memcached_servers', asks: isSet, when: keystone, instead: noMemcached },
  { section: 'keystone_authtoken', name: 'memcache_security_strategy', asks: isSet, when: keystone, instead: noMemcached },
  { section: 'keystone_authtoken', name: 'memcache_secret_key', asks: isSet, when: keystone, secret: true, instead: noMemcached },
  { section: 'keystone_authtoken', name: 'service_token_roles', asks: (_v, set) => set, when: keystone, instead: 'Porthole reads no X-Service-Token; the caller\'s X-Auth-Token alone decides' },
  { section: 'keystone_authtoken', name: 'service_token_roles_required', asks: (_v, set) => set, when: keystone, instead: 'Porthole reads no X-Service-Token; the caller\'s X-Auth-Token alone decides' },
  { section: 'keystone_authtoken', name: 'region_name', asks: isSet, when: keystone, instead: catalog },
  { section: 'keystone_authtoken', name: 'interface', asks: isSet, when: keystone, instead: catalog },
  { section: 'keystone_authtoken', name: 'delay_auth_decision', asks: (v) => v === true, when: keystone, instead: 'Porthole refuses a request without a valid token itself (401)' },
];

/** One line per Nova option that is set and that Porthole does not honour, in a fixed order. */
export function unhonouredOptions(loaded: Pick<LoadedConfig, 'config' | 'provenance'>): string[] {
  const out: string[] = [];
  for (const u of UNHONOURED) {
    if (u.when && !u.when(loaded.config)) continue;
    const value = (loaded.config[u.section] as Record<string, unknown>)[u.name];
    const source = loaded.provenance.get(`${u.section}.${u.name}`);
    if (!u.asks(value, source !== undefined)) continue;
    const shown = u.secret ? '(set)' : Array.isArray(value) ? value.join(',') : String(value);
    out.push(`${source ? `${source}: ` : ''}[${u.section}] ${u.name} = ${shown} is accepted but not honoured: ${u.instead}`);
  }
  return out;
}
