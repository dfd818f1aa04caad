/**
 * @module sessions/local-registry
 * The registry when Porthole has no store of its own (`[database] connection` is a Nova database
 * and `[porthole] connection` is not set): this process's proxy and sessions, in memory. The
 * admin API of a `porthole serve` lists and kills the sessions of that process, and a revocation
 * made through it closes them at once; other processes are not told (they find tokens deleted
 * before their expiry at their next heartbeat, `tracker.ts`).
 */
import type { ProxyRecord, RegistryBackend, RegistryListing, SessionEvent, SessionRecord, Subscription } from './types.ts';

export class LocalRegistry implements RegistryBackend {
  readonly shared = false;
  readonly description = 'this process (no store of Porthole\'s own)';
  private readonly proxies = new Map<string, ProxyRecord>();
  private readonly sessions = new Map<string, SessionRecord & { killed?: boolean }>();
  private readonly listeners = new Set<(event: SessionEvent) => void>();

  async heartbeat(proxy: ProxyRecord, sessions: readonly SessionRecord[]): Promise<string[]> {
    this.proxies.set(proxy.id, proxy);
    const killed: string[] = [];
    for (const s of sessions) {
      const was = this.sessions.get(s.id);
      this.sessions.set(s.id, { ...s, killed: was?.killed });
      if (was?.killed) killed.push(s.id);
    }
    return killed;
  }

  async addSession(session: SessionRecord, _proxy: ProxyRecord): Promise<void> {
    this.sessions.set(session.id, session);
  }

  async removeSession(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  async removeProxy(id: string): Promise<void> {
    this.proxies.delete(id);
    for (const [sid, s] of this.sessions) if (s.proxyId === id) this.sessions.delete(sid);
  }

  async sweep(): Promise<void> {}

  async list(): Promise<RegistryListing> {
    const sessions = [...this.sessions.values()].filter((s) => this.proxies.has(s.proxyId)).map(({ killed: _, ...s }) => s);
    return { proxies: [...this.proxies.values()], sessions: sessions.sort((a, b) => a.startedAt - b.startedAt) };
  }

  async markKilled(id: string): Promise<string | undefined> {
    const s = this.sessions.get(id);
    if (!s || !this.proxies.has(s.proxyId)) return undefined;
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
