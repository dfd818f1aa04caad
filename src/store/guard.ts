/**
 * @module store/guard
 * What every caller of a store sees when the store is away: each operation either answers within
 * `[porthole] store_query_timeout` or fails with one error, `STORE_UNAVAILABLE` (HTTP 503, "console
 * token store unavailable"), whatever the driver said (connection refused, reset, timed out, a pool
 * with no free connection). The proxy turns it into a 503 before the upgrade, the API into Nova's
 * 503 body; the driver's words go to the log only. Errors Porthole raises itself pass unchanged.
 * A read that fails is tried once more within the same deadline: after a database restart a
 * pool may still hold a connection that only its first use shows to be dead, and a lookup is
 * safe to repeat (a write is not: it may have been done before its answer was lost).
 */
import { GatewayError, isGatewayError } from '../errors.ts';
import type { Inventory, Server } from '../inventory/types.ts';
import type { AuditEventStore, AuditLine, AuditQuery } from './audit-events.ts';
import type { RecordingFilter, RecordingRecord, RecordingStore } from './recordings.ts';
import type { ConsoleTokenExtras, TokenExtrasStore } from './token-extras.ts';
import type { ConsoleToken, ConsumeResult, NewConsoleToken, TokenLookup, TokenStore } from './types.ts';

export const STORE_UNAVAILABLE_MESSAGE = 'console token store unavailable';

export function storeUnavailable(description: string, what: string, err: unknown): GatewayError {
  const detail = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err);
  return new GatewayError('STORE_UNAVAILABLE', `${what} on ${description} failed: ${detail}`, { status: 503, closeCode: 1011, clientMessage: STORE_UNAVAILABLE_MESSAGE, cause: err });
}

/** Runs `op` within `timeoutMs`; any failure that is not Porthole's own becomes STORE_UNAVAILABLE. */
export async function guard<T>(description: string, what: string, timeoutMs: number, op: () => Promise<T>, opts: { read?: boolean } = {}): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const attempt = opts.read ? () => op().catch((err: unknown) => (isGatewayError(err) || timedOut ? Promise.reject(err) : op())) : op;
  try {
    return await Promise.race([attempt(), deadline]);
  } catch (err) {
    throw isGatewayError(err) ? err : storeUnavailable(description, what, err);
  } finally {
    clearTimeout(timer);
  }
}

export class GuardedTokenStore implements TokenStore {
  constructor(
    private readonly inner: TokenStore,
    private readonly description: string,
    private readonly timeoutMs: number,
  ) {}

  private run<T>(what: string, op: () => Promise<T>, read = false): Promise<T> {
    return guard(this.description, what, this.timeoutMs, op, { read });
  }

  create(spec: NewConsoleToken): Promise<{ token: string; record: ConsoleToken }> {
    return this.run('token create', () => this.inner.create(spec));
  }
  lookup(token: string): Promise<TokenLookup> {
    return this.run('token lookup', () => this.inner.lookup(token), true);
  }
  revoke(token: string): Promise<boolean> {
    return this.run('token revoke', () => this.inner.revoke(token));
  }
  revokeByInstance(instanceUuid: string): Promise<number> {
    return this.run('token revoke by instance', () => this.inner.revokeByInstance(instanceUuid));
  }
  sweepExpired(): Promise<number> {
    return this.run('sweep of expired tokens', () => this.inner.sweepExpired());
  }
  consume(token: ConsoleToken, client: string, graceSeconds: number): Promise<ConsumeResult> {
    return this.run('token consume', () => this.inner.consume(token, client, graceSeconds));
  }
  release(token: ConsoleToken, client: string): Promise<void> {
    return this.run('token release', () => this.inner.release(token, client));
  }
  forget(token: ConsoleToken, client: string): Promise<void> {
    return this.run('token forget', () => this.inner.forget(token, client));
  }
}

export class GuardedInventory implements Inventory {
  constructor(
    private readonly inner: Inventory,
    private readonly description: string,
    private readonly timeoutMs: number,
  ) {}

  private run<T>(what: string, op: () => Promise<T>, read = false): Promise<T> {
    return guard(this.description, what, this.timeoutMs, op, { read });
  }

  put(server: Server): Promise<void> {
    return this.run('inventory put', () => this.inner.put(server));
  }
  get(id: string): Promise<Server | undefined> {
    return this.run('inventory get', () => this.inner.get(id), true);
  }
  list(): Promise<Server[]> {
    return this.run('inventory list', () => this.inner.list(), true);
  }
  remove(id: string): Promise<boolean> {
    return this.run('inventory remove', () => this.inner.remove(id));
  }
}

export class GuardedAuditEvents implements AuditEventStore {
  readonly description: string;

  constructor(
    private readonly inner: AuditEventStore,
    description: string,
    private readonly timeoutMs: number,
  ) {
    this.description = description;
  }

  append(lines: readonly AuditLine[]): Promise<void> {
    return guard(this.description, 'audit events append', this.timeoutMs, () => this.inner.append(lines));
  }
  query(q: AuditQuery): Promise<AuditLine[]> {
    return guard(this.description, 'audit events query', this.timeoutMs, () => this.inner.query(q), { read: true });
  }
  sweep(before: number): Promise<number> {
    return guard(this.description, 'audit events sweep', this.timeoutMs, () => this.inner.sweep(before));
  }
}

export class GuardedTokenExtras implements TokenExtrasStore {
  constructor(
    private readonly inner: TokenExtrasStore,
    private readonly description: string,
    private readonly timeoutMs: number,
  ) {}

  put(tokenHash: string, extras: ConsoleTokenExtras, expires: number): Promise<void> {
    return guard(this.description, 'token extras put', this.timeoutMs, () => this.inner.put(tokenHash, extras, expires));
  }
  get(tokenHash: string): Promise<ConsoleTokenExtras | null> {
    return guard(this.description, 'token extras get', this.timeoutMs, () => this.inner.get(tokenHash), { read: true });
  }
  sweepExpired(): Promise<number> {
    return guard(this.description, 'sweep of expired token extras', this.timeoutMs, () => this.inner.sweepExpired());
  }
  anyRecorded(): Promise<boolean> {
    return guard(this.description, 'token extras: any recorded', this.timeoutMs, () => this.inner.anyRecorded(), { read: true });
  }
}

export class GuardedRecordings implements RecordingStore {
  constructor(
    private readonly inner: RecordingStore,
    private readonly description: string,
    private readonly timeoutMs: number,
  ) {}

  add(r: RecordingRecord): Promise<void> {
    return guard(this.description, 'recording add', this.timeoutMs, () => this.inner.add(r));
  }
  finish(id: string, endedAt: number, sizeBytes: number): Promise<void> {
    return guard(this.description, 'recording finish', this.timeoutMs, () => this.inner.finish(id, endedAt, sizeBytes));
  }
  get(id: string): Promise<RecordingRecord | undefined> {
    return guard(this.description, 'recording get', this.timeoutMs, () => this.inner.get(id), { read: true });
  }
  list(filter?: RecordingFilter): Promise<RecordingRecord[]> {
    return guard(this.description, 'recordings list', this.timeoutMs, () => this.inner.list(filter), { read: true });
  }
  remove(id: string): Promise<boolean> {
    return guard(this.description, 'recording remove', this.timeoutMs, () => this.inner.remove(id));
  }
}
