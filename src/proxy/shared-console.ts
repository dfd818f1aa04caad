/**
 * @module proxy/shared-console
 * One shared console: the one backend RFB connection of one server that all its noVNC viewers
 * go through (`[porthole] shared_consoles`, `server add --shared-consoles`). It is the one owner
 * of that connection: it dials it (`backend.ts`), authenticates it with the server's settings and
 * ClientInit's shared flag set (`rfb/client.ts`), keeps the framebuffer (the client core's
 * decoder), and asks the backend for incremental updates continuously while anyone watches (one
 * request outstanding; the next goes when an update arrives). Each viewer is its own RFB server
 * stream (`rfb/shared/viewer-stream.ts`), told what changed and answering its browser at its own
 * pace: a slow browser never holds up the backend or the others.
 *
 * Control: one viewer at most is in control; only its input (keys, pointer, clipboard) reaches
 * the backend, everyone else's is dropped. The first viewer takes it, or one whose token's extras
 * say `control`; a viewer may ask for it (the controller is asked, and control moves when it
 * says yes, when it has not answered within `CONTROL_ANSWER_MS`, or at once when it has been idle
 * `CONTROL_IDLE_MS`), the controller may hand it over or let go, and when it leaves the
 * longest-present viewer that is not view-only takes it. A viewer of a `novnc-view-only` token
 * never has control. Every change is an event carrying the viewers' list.
 *
 * The backend connection closes `lingerMs` after the last viewer left (a page reload finds it
 * still there), and when the backend goes or errs: every viewer's stream ends then, and its
 * session ends "backend closed" as a plain relay's does. When recording applies, it records at
 * this one place: the backend's stream and what goes to the backend (the controller's input).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { asGatewayError, GatewayError } from '../errors.ts';
import { formatEndpoint, type ConsoleEndpoint, type Server } from '../inventory/types.ts';
import { openRfbClient, DEFAULT_ENCODINGS, type RfbClient } from '../rfb/client.ts';
import { allowsFromVm, allowsToVm, type ClipboardPolicy } from '../rfb/clipboard-policy.ts';
import { CLIENT_PIXEL_FORMAT, encodePixelFormat } from '../rfb/framebuffer/pixel-format.ts';
import type { CursorShape, Framebuffer, Rect } from '../rfb/framebuffer/types.ts';
import { ViewerStream, type ScreenHost } from '../rfb/shared/viewer-stream.ts';
import type { BackendAuthSettings } from '../rfb/types.ts';
import { connectBackend, type BackendOptions } from './backend.ts';
import type { SessionRecorder } from './recorder.ts';
import {
  CONTROL_ANSWER_MS, CONTROL_IDLE_MS, SHARED_LINGER_MS,
  type ControlAnswer, type ControlChange, type ControlRequest, type SharedAttachment, type SharedAttachOptions,
  type SharedConsoleControl, type SharedConsoleEvent, type SharedConsoleState, type SharedViewerInfo, type ViewerRole,
} from './shared-types.ts';

export interface SharedConsoleOptions extends BackendOptions {
  readonly log: Logger;
  /** The server's backend auth settings (`backendAuthSettings` in `upgrade.ts`). */
  readonly auth: BackendAuthSettings;
  /** Deadline of the backend's RFB handshake and its first update, and of each viewer's handshake (ms). */
  readonly rfbTimeoutMs: number;
  /** `[porthole] clipboard`; absent: both ways. */
  readonly clipboard?: ClipboardPolicy;
  readonly lingerMs?: number;
  readonly answerMs?: number;
  readonly idleMs?: number;
  /** Starts the console's recording, when recording applies (the hub decides); given the ServerInit and the console's id. */
  readonly record?: (serverInit: Buffer, consoleId: string) => SessionRecorder | undefined;
  /** A viewer's role changed (the registry's `setRole`). */
  readonly onRole?: (sessionId: string, role: ViewerRole) => void;
}

/** A viewer's stream with the hub's facts about it. */
class SharedViewer extends ViewerStream implements SharedAttachment {
  lastInput = Date.now();
  constructor(
    host: ScreenHost,
    handshakeTimeoutMs: number,
    readonly viewerId: string,
    readonly consoleId: string,
    readonly initialRole: ViewerRole,
    readonly recording: string | null,
    readonly facts: { readonly name: string; readonly viewOnly: boolean; readonly since: number; readonly sessionId: string | null; readonly viewerKey: string | null; readonly tokenHash: string | null },
  ) {
    super(host, { handshakeTimeoutMs });
  }
}

export type SharedConsoleStateName = 'starting' | 'open' | 'closed';

export class SharedConsole implements SharedConsoleControl, ScreenHost {
  readonly id = randomUUID();
  private client: RfbClient | undefined;
  private started: Promise<void> | undefined;
  private readonly viewers = new Map<string, SharedViewer>();
  private controller: string | null = null;
  private request: ControlRequest | null = null;
  private requestTimer: NodeJS.Timeout | undefined;
  private linger: NodeJS.Timeout | undefined;
  private outstanding = false;
  private shape: CursorShape | null = null;
  private recorder: SessionRecorder | undefined;
  private readonly listeners = new Set<(e: SharedConsoleEvent) => void>();
  /** Viewers ever attached: `viewer N`. */
  private arrivals = 0;
  private over = false;
  private readonly dialAbort = new AbortController();
  /** Called once when the console is over (the hub forgets it). */
  onClosed: (() => void) | undefined;

  constructor(
    readonly serverId: string,
    readonly endpoint: ConsoleEndpoint,
    private readonly opts: SharedConsoleOptions,
  ) {}

  get status(): SharedConsoleStateName {
    return this.over ? 'closed' : this.client ? 'open' : 'starting';
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** The recording's id, when the console is recorded. */
  get recording(): string | null {
    return this.recorder?.id ?? null;
  }

  /** The kept screen, once the backend's first update arrived; undefined before and after. */
  get framebuffer(): Framebuffer | undefined {
    return this.client && !this.over ? this.client.framebuffer : undefined;
  }

  /** Dials and authenticates the backend and waits for its first whole screen; once. */
  start(): Promise<void> {
    this.started ??= this.open();
    return this.started;
  }

  /** Attaches a viewer; the console must have started. */
  attach(o: SharedAttachOptions): SharedAttachment {
    if (this.over || !this.client) throw this.closedError();
    clearTimeout(this.linger);
    this.linger = undefined;
    this.arrivals++;
    const id = randomUUID();
    const takes = !o.viewOnly && (o.control || this.controller === null);
    const why: ControlChange = o.control && this.controller !== null ? 'token' : 'first';
    const viewer = new SharedViewer(this, this.opts.rfbTimeoutMs, id, this.id, takes ? 'control' : 'view', this.recording, {
      name: o.name ?? `viewer ${this.arrivals}`,
      viewOnly: o.viewOnly,
      since: Date.now(),
      sessionId: o.sessionId ?? null,
      viewerKey: o.viewerKey,
      tokenHash: o.tokenHash ?? null,
    });
    this.viewers.set(id, viewer);
    this.emit({ kind: 'joined', viewer: id, state: this.state() });
    if (takes) this.moveControl(id, why);
    this.askBackend();
    return viewer;
  }

  /** The viewer whose page sent `viewerKey` (and whose token hash is `tokenHash`, when given). */
  viewerByKey(viewerKey: string, tokenHash?: string): string | undefined {
    for (const v of this.viewers.values()) {
      if (v.facts.viewerKey === viewerKey && (tokenHash === undefined || v.facts.tokenHash === tokenHash)) return v.viewerId;
    }
    return undefined;
  }

  state(): SharedConsoleState {
    const viewers: SharedViewerInfo[] = [];
    for (const v of this.viewers.values()) {
      viewers.push({ id: v.viewerId, name: v.facts.name, role: v.viewerId === this.controller ? 'control' : 'view', viewOnly: v.facts.viewOnly, since: v.facts.since, sessionId: v.facts.sessionId });
    }
    return { id: this.id, serverId: this.serverId, viewers, controller: this.controller, request: this.request };
  }

  subscribe(listener: (event: SharedConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  requestControl(viewerId: string): ControlAnswer {
    const v = this.viewers.get(viewerId);
    if (!v || v.facts.viewOnly) return 'refused';
    if (this.controller === viewerId) return 'granted';
    const holder = this.controller === null ? undefined : this.viewers.get(this.controller);
    if (!holder) {
      this.moveControl(viewerId, 'given');
      return 'granted';
    }
    if (Date.now() - holder.lastInput >= (this.opts.idleMs ?? CONTROL_IDLE_MS)) {
      this.moveControl(viewerId, 'idle');
      return 'granted';
    }
    const now = Date.now();
    const answerMs = this.opts.answerMs ?? CONTROL_ANSWER_MS;
    // the newest request replaces one still waiting: the controller answers the one it is shown
    this.clearRequest();
    this.request = { from: viewerId, at: now, deadline: now + answerMs };
    this.requestTimer = setTimeout(() => {
      this.requestTimer = undefined;
      if (this.request?.from === viewerId && this.viewers.has(viewerId)) this.moveControl(viewerId, 'timeout');
    }, answerMs);
    this.requestTimer.unref();
    this.emit({ kind: 'requested', viewer: viewerId, state: this.state() });
    return 'asked';
  }

  answerRequest(controllerId: string, requesterId: string, accept: boolean): ControlAnswer {
    if (this.controller !== controllerId || this.request?.from !== requesterId) return 'refused';
    if (accept) {
      this.moveControl(requesterId, 'given');
      return 'granted';
    }
    this.clearRequest();
    this.emit({ kind: 'declined', viewer: requesterId, state: this.state() });
    return 'granted';
  }

  giveControl(fromViewerId: string, toViewerId: string): ControlAnswer {
    const to = this.viewers.get(toViewerId);
    if (this.controller !== fromViewerId || !to || to.facts.viewOnly) return 'refused';
    if (fromViewerId !== toViewerId) this.moveControl(toViewerId, 'given');
    return 'granted';
  }

  releaseControl(viewerId: string): ControlAnswer {
    if (this.controller !== viewerId) return 'refused';
    this.moveControl(null, 'released');
    return 'granted';
  }

  /** Closes the backend connection and ends every viewer's stream. */
  close(reason?: GatewayError): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.linger);
    this.clearRequest();
    this.dialAbort.abort(reason ?? new GatewayError('CLIENT_CLOSED', 'shared console closed'));
    this.client?.close();
    for (const v of [...this.viewers.values()]) v.backendEnded();
    void this.recorder?.close();
    this.emit({ kind: 'closed', state: this.state() });
    this.listeners.clear();
    this.onClosed?.();
  }

  // ScreenHost: what each viewer stream asks of the console

  screen(): Framebuffer {
    return this.client!.framebuffer;
  }

  cursor(): CursorShape | null {
    return this.shape;
  }

  input(viewer: ViewerStream, message: Buffer): void {
    const v = viewer as SharedViewer;
    // everyone but the controller watches: their keys, pointer and clipboard go nowhere
    if (v.viewerId !== this.controller || this.over || !this.client) return;
    v.lastInput = Date.now();
    let m = message;
    if (m[0] === 6 && !allowsToVm(this.opts.clipboard ?? 'both')) return;
    // QEMU's extended key event carries the keysym too: the backend gets a plain KeyEvent, which
    // it takes without having announced the QEMU pseudo-encoding to Porthole
    if (m[0] === 255) {
      const key = Buffer.alloc(8);
      key[0] = 4;
      key[1] = m.readUInt16BE(2) !== 0 ? 1 : 0;
      m.copy(key, 4, 4, 8);
      m = key;
    }
    try {
      this.client.write(m);
    } catch {
      return;
    }
    this.recorder?.fromClient(m);
  }

  wants(): void {
    this.askBackend();
  }

  detach(viewer: ViewerStream): void {
    const v = viewer as SharedViewer;
    if (this.viewers.get(v.viewerId) !== v) return;
    this.viewers.delete(v.viewerId);
    if (this.request?.from === v.viewerId) this.clearRequest();
    this.emit({ kind: 'left', viewer: v.viewerId, state: this.state() });
    if (this.controller === v.viewerId) {
      let next: SharedViewer | undefined;
      for (const c of this.viewers.values()) if (!c.facts.viewOnly) { next = c; break; }
      this.moveControl(next?.viewerId ?? null, 'left');
    }
    if (this.viewers.size === 0 && !this.over) {
      this.linger = setTimeout(() => {
        this.opts.log.debug({ event: 'shared_console_idle', server: this.serverId, sharedConsole: this.id }, `shared console of server ${this.serverId}: no viewer left; its backend connection closes`);
        this.close();
      }, this.opts.lingerMs ?? SHARED_LINGER_MS);
      this.linger.unref();
    }
  }

  private async open(): Promise<void> {
    const address = formatEndpoint(this.endpoint);
    try {
      const socket = await connectBackend({ host: this.endpoint.host, port: this.endpoint.port, internalAccessPath: null }, this.opts, this.dialAbort.signal);
      if (this.over) {
        socket.destroy();
        throw this.closedError();
      }
      let first!: () => void;
      const firstUpdate = new Promise<void>((resolve) => (first = resolve));
      const client = await openRfbClient(socket, this.opts.auth, {
        timeoutMs: this.opts.rfbTimeoutMs,
        address,
        shared: true,
        encodings: DEFAULT_ENCODINGS,
        events: {
          update: (damage) => {
            first();
            this.updated(damage);
          },
          resize: () => this.resized(),
          cursor: (shape) => this.cursorChanged(shape),
          bell: () => this.each((v) => v.bell()),
          cutText: (text) => {
            if (allowsFromVm(this.opts.clipboard ?? 'both')) this.each((v) => v.cutText(text));
          },
        },
      });
      if (this.over) {
        client.close();
        throw this.closedError();
      }
      this.client = client;
      client.once('end', (err) => this.close(err ?? undefined));
      this.startRecording(client);
      this.outstanding = true;
      client.requestUpdate(false);
      await deadline(firstUpdate, this.opts.rfbTimeoutMs, () => new GatewayError('BACKEND_TIMEOUT', `backend ${address} sent no screen within ${this.opts.rfbTimeoutMs} ms`, { status: 504, closeCode: 1011, clientMessage: 'The console did not answer' }));
      if (this.over) throw this.closedError();
      this.opts.log.info({ event: 'shared_console', server: this.serverId, sharedConsole: this.id, backend: address, recording: this.recording ?? undefined }, `shared console of server ${this.serverId} (${address}) open: ${client.framebuffer.width}x${client.framebuffer.height}`);
    } catch (err) {
      const e = asGatewayError(err);
      this.close(e);
      throw e;
    }
  }

  private startRecording(client: RfbClient): void {
    const rec = this.opts.record?.(client.serverInit, this.id);
    if (!rec) return;
    this.recorder = rec;
    // the decoder of a playback starts from this ServerInit and the hub's own format and encodings
    const pf = Buffer.alloc(20);
    encodePixelFormat(CLIENT_PIXEL_FORMAT).copy(pf, 4);
    rec.fromClient(pf);
    const enc = Buffer.alloc(4 + 4 * DEFAULT_ENCODINGS.length);
    enc[0] = 2;
    enc.writeUInt16BE(DEFAULT_ENCODINGS.length, 2);
    DEFAULT_ENCODINGS.forEach((e, i) => enc.writeInt32BE(e, 4 + 4 * i));
    rec.fromClient(enc);
    client.socket.on('data', (chunk: Buffer) => rec.fromBackend(chunk));
  }

  /** One update request outstanding while anyone watches. */
  private askBackend(): void {
    if (this.outstanding || this.over || !this.client || this.viewers.size === 0) return;
    this.outstanding = true;
    this.client.requestUpdate(true);
  }

  private updated(damage: readonly Rect[]): void {
    this.outstanding = false;
    this.each((v) => v.damage(damage));
    this.askBackend();
  }

  private resized(): void {
    this.each((v) => v.resized());
  }

  private cursorChanged(shape: CursorShape): void {
    this.shape = shape;
    this.each((v) => v.cursorShape());
  }

  private each(f: (v: SharedViewer) => void): void {
    for (const v of this.viewers.values()) f(v);
  }

  private moveControl(to: string | null, why: ControlChange): void {
    const from = this.controller;
    this.clearRequest();
    if (from === to) return;
    this.controller = to;
    const onRole = this.opts.onRole;
    if (onRole) {
      const old = from === null ? undefined : this.viewers.get(from);
      if (old?.facts.sessionId) onRole(old.facts.sessionId, 'view');
      const now = to === null ? undefined : this.viewers.get(to);
      if (now?.facts.sessionId) onRole(now.facts.sessionId, 'control');
    }
    if (to !== null) {
      // a new controller starts with a clean slate: the idle clock counts from now
      const v = this.viewers.get(to);
      if (v) v.lastInput = Date.now();
    }
    this.opts.log.debug({ event: 'shared_console_control', server: this.serverId, sharedConsole: this.id, from, to, why }, `shared console of server ${this.serverId}: control ${to === null ? 'released' : `to viewer ${to}`} (${why})`);
    this.emit({ kind: 'control', viewer: to, why, state: this.state() });
  }

  private clearRequest(): void {
    clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
    this.request = null;
  }

  private emit(e: SharedConsoleEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.opts.log.error({ event: 'bug', err: (err as Error)?.message }, `shared console listener failed: ${(err as Error)?.stack ?? err}`);
      }
    }
  }

  private closedError(): GatewayError {
    return new GatewayError('BACKEND_CLOSED', `shared console of server ${this.serverId} is closed`, { status: 502, closeCode: 1011, clientMessage: 'The console is not reachable' });
  }
}

function deadline<T>(p: Promise<T>, ms: number, error: () => GatewayError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]).finally(() => clearTimeout(timer));
}
