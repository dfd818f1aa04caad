/**
 * @module config/unhonoured
 * The Nova options a nova.conf or a Nova daemon's command line may set that Porthole accepts but
 * cannot do: websockify's `daemon` and `record`, `source_is_ipv6`, oslo.log's
 * `log_config_append` (a Python logging configuration) and the Python remote debugger of
 * `[remote_debug]`. Refusing them would break the init scripts and nova.conf files that set
 * them; ignoring them silently would hide a difference, so each one set gets one warning line,
 * naming where it was set and what to do instead, for the daemon to log once at start.
 */
import type { LoadedConfig } from './load.ts';

interface Unhonoured {
  readonly section: 'DEFAULT' | 'remote_debug';
  readonly name: string;
  /** Whether the value asks for something Porthole does not do (`daemon = false` asks nothing). */
  readonly asks: (value: unknown) => boolean;
  readonly instead: string;
}

const isSet = (v: unknown) => v !== null && v !== undefined && v !== '';

const UNHONOURED: readonly Unhonoured[] = [
  { section: 'DEFAULT', name: 'daemon', asks: (v) => v === true, instead: 'Porthole always runs in the foreground; start it under systemd or start-stop-daemon --background' },
  { section: 'DEFAULT', name: 'record', asks: isSet, instead: 'Porthole does not record console sessions; nothing is written to that file' },
  { section: 'DEFAULT', name: 'source_is_ipv6', asks: (v) => v === true, instead: 'Porthole listens on the address its *_host option names, IPv4 or IPv6 (e.g. [vnc] novncproxy_host = ::)' },
  { section: 'DEFAULT', name: 'log_config_append', asks: isSet, instead: 'Porthole cannot read a Python logging configuration; it logs as log_file, log_dir, use_json, use_journal and use_syslog say' },
  { section: 'remote_debug', name: 'host', asks: isSet, instead: 'Porthole is not Python and has no remote debugger to attach; use node --inspect' },
  { section: 'remote_debug', name: 'port', asks: isSet, instead: 'Porthole is not Python and has no remote debugger to attach; use node --inspect' },
];

/** One line per Nova option that is set and that Porthole does not honour, in a fixed order. */
export function unhonouredOptions(loaded: Pick<LoadedConfig, 'config' | 'provenance'>): string[] {
  const out: string[] = [];
  for (const u of UNHONOURED) {
    const value = (loaded.config[u.section] as Record<string, unknown>)[u.name];
    if (!u.asks(value)) continue;
    const source = loaded.provenance.get(`${u.section}.${u.name}`);
    out.push(`${source ? `${source}: ` : ''}[${u.section}] ${u.name} = ${String(value)} is accepted but not honoured: ${u.instead}`);
  }
  return out;
}
