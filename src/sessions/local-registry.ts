/**
 * @module sessions/local-registry
 * The registry when Porthole has no store of its own (`[database] connection` is a Nova database
 * and `[porthole] connection` is not set): this process's proxy and sessions, in memory. The
 * admin API of a `porthole serve` lists and kills the sessions of that process, and a revocation
 * made through it closes them at once; other processes are not told (they find tokens deleted
 * before their expiry at their next heartbeat, `tracker.ts`).
 */
import type { Beat, ProxyLoad, ProxyRecord, RegistryBackend, RegistryListing, SessionEvent, SessionRecord, SessionRole, Subscription } from './types.ts';

export class LocalRegistry implements RegistryBackend {
  readonly shared = false;
  readonly description = 'this process (no store of Porthole\'s own)';
  private readonly live = new Map<string, ProxyRecord>();
  private readonly sessions = new Map<string, SessionRecord & { killed?: boolean }>();
  private readonly listeners = new Set<(event: SessionEvent) => void>();

  async heartbeat(proxy: ProxyRecord, load?: ProxyLoad): Promise<Beat> {
    const was = this.live.get(proxy.id);
    this.live.set(proxy.id, { ...proxy, figuresAt: was?.figuresAt, load: load ?? was?.load });
    const killed = [...this.sessions.values()].filter((s) => s.proxyId === proxy.id && s.killed).map((s) => s.id);
    return { killed, rejoined: !was };
  }

  async addSessions(sessions: readonly SessionRecord[], _proxy: ProxyRecord): Promise<void> {
    for (const s of sessions) this.sessions.set(s.id, { ...s, killed: this.sessions.get(s.id)?.killed });
  }

  async removeSessions(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.sessions.delete(id);
  }

  async setRole(id: string, role: SessionRole): Promise<void> {
    const s = this.sessions.get(id);
    if (s) this.sessions.set(id, { ...s, role });
  }

  async answered(proxyId: string, at: number): Promise<void> {
    const p = this.live.get(proxyId);
    if (p) this.live.set(proxyId, { ...p, figuresAt: Math.max(p.figuresAt ?? 0, at) });
  }

  async removeProxy(id: string): Promise<void> {
    this.live.delete(id);
    for (const [sid, s] of this.sessions) if (s.proxyId === id) this.sessions.delete(sid);
  }

  async sweep(): Promise<void> {}

  async proxies(opts?: { load?: boolean }): Promise<ProxyRecord[]> {
    return [...this.live.values()].map((p) => (opts?.load === false ? { ...p, load: undefined } : p));
  }

  async list(): Promise<RegistryListing> {
    const sessions = [...this.sessions.values()].filter((s) => this.live.has(s.proxyId)).map(({ killed: _, ...s }) => s);
    return { proxies: [...this.live.values()].map(({ load: _, ...p }) => p), sessions: sessions.sort((a, b) => a.startedAt - b.startedAt) };
  }

  async markKilled(id: string): Promise<string | undefined> {
    const s = this.sessions.get(id);
    if (!s || !this.live.has(s.proxyId)) return undefined;
    s.killed = true;
    return s.proxyId;
  }

  async publish(event: SessionEvent): Promise<void> {
    for (const l of this.listeners) queueMicrotask(() => l(event));
  }

  async subscribe(onEvent: (event: SessionEvent) => void): Promise<Subscription> {
    this.listeners.add(onEvent);
    return { close: async () => void this.listeners.delete(onEvent) };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
