/**
 * @module sessions/format
 * The registry as `porthole sessions list` prints it and the admin API answers it: the same JSON
 * for both (snake_case, times as ISO 8601, bytes as numbers as of the session's last heartbeat;
 * a shared console's viewer, role and console, a recording's id, null where none), and a table
 * for people, where a shared console is one line and its viewers the lines under it (name, role:
 * control or watching), since it is one backend connection however many people are on it.
 */
import type { ProxyRecord, RegistryListing, SessionRecord } from './types.ts';

export function sessionJson(s: SessionRecord, proxies: ReadonlyMap<string, ProxyRecord>) {
  return {
    id: s.id,
    proxy_id: s.proxyId,
    proxy_address: proxies.get(s.proxyId)?.address ?? null,
    console_type: s.consoleType,
    instance_uuid: s.instanceUuid,
    server_name: s.serverName,
    client: s.client,
    backend: s.backend,
    token_hash_prefix: s.tokenLogId,
    started_at: new Date(s.startedAt).toISOString(),
    updated_at: new Date(s.updatedAt).toISOString(),
    bytes_from_client: s.bytesFromClient,
    bytes_from_backend: s.bytesFromBackend,
    viewer: s.viewer ?? null,
    shared_console: s.sharedConsole ?? null,
    role: s.role ?? null,
    recording: s.recording ?? null,
  };
}

export function proxyJson(p: ProxyRecord, sessions: number) {
  return {
    id: p.id,
    address: p.address,
    hostname: p.hostname,
    pid: p.pid,
    started_at: new Date(p.startedAt).toISOString(),
    heartbeat_at: new Date(p.heartbeatAt).toISOString(),
    draining: p.draining,
    sessions,
  };
}

export function listingJson(l: RegistryListing) {
  const proxies = new Map(l.proxies.map((p) => [p.id, p]));
  return {
    sessions: l.sessions.map((s) => sessionJson(s, proxies)),
    proxies: l.proxies.map((p) => proxyJson(p, l.sessions.filter((s) => s.proxyId === p.id).length)),
  };
}

export function listingText(l: RegistryListing): string {
  const proxies = new Map(l.proxies.map((p) => [p.id, p]));
  // the workers of `[porthole] workers` share one address: their pids tell them apart
  const seen = new Map<string, number>();
  for (const p of l.proxies) seen.set(p.address, (seen.get(p.address) ?? 0) + 1);
  const label = (p: ProxyRecord) => (seen.get(p.address)! > 1 ? `${p.address} pid ${p.pid}` : p.address);
  const labelOf = (id: string) => {
    const p = proxies.get(id);
    return p ? label(p) : id;
  };
  const since = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
  const row = (s: SessionRecord, id: string, server: string, role: string, recording: string) => [id, server, s.viewer ?? '-', role, s.client, labelOf(s.proxyId), since(s.startedAt), bytes(s.bytesFromClient), bytes(s.bytesFromBackend), recording];
  const rows = [['SESSION', 'SERVER', 'VIEWER', 'ROLE', 'CLIENT', 'PROXY', 'SINCE', 'FROM CLIENT', 'FROM BACKEND', 'RECORDING']];
  // a shared console's viewers on the lines under it, in the order they came: one console, one
  // backend connection (per proxy: each proxy holds its own), however many people watch it
  const shared = new Map<string, SessionRecord[]>();
  for (const s of l.sessions) if (s.sharedConsole) shared.set(`${s.proxyId} ${s.sharedConsole}`, [...(shared.get(`${s.proxyId} ${s.sharedConsole}`) ?? []), s]);
  const done = new Set<string>();
  for (const s of l.sessions) {
    const server = s.serverName ?? s.instanceUuid;
    if (!s.sharedConsole) {
      rows.push(row(s, s.id, server, '-', s.recording ?? '-'));
      continue;
    }
    const key = `${s.proxyId} ${s.sharedConsole}`;
    if (done.has(key)) continue;
    done.add(key);
    const viewers = [...shared.get(key)!].sort((a, b) => a.startedAt - b.startedAt);
    const recording = viewers.find((v) => v.recording)?.recording ?? '-';
    rows.push([`shared console ${s.sharedConsole.slice(0, 8)}`, server, `${viewers.length} viewer${viewers.length === 1 ? '' : 's'}`, '', '', labelOf(s.proxyId), since(viewers[0]!.startedAt), '', '', recording]);
    for (const v of viewers) rows.push(row(v, `  ${v.id}`, '', v.role === 'control' ? 'control' : 'watching', ''));
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = l.sessions.length ? `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n` : '';
  const consoles = shared.size ? ` (${shared.size} shared console${shared.size === 1 ? '' : 's'})` : '';
  const summary = `${l.sessions.length} live session(s)${consoles} on ${l.proxies.length} proxy(ies): ${l.proxies.map((p) => `${label(p)}${p.draining ? ' (draining)' : ''}`).join(', ') || 'none'}`;
  return `${table}${summary}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
