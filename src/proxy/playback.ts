/**
 * @module proxy/playback
 * The playback WebSocket of recordings (`/porthole/playback?token=...` on the noVNC listener),
 * which the playback page (`src/web/static/playback.js`) plays from. Its token is a console
 * token of type `rfb-recording` (minted by the recordings API: `instance_uuid` the recording's
 * server, `internal_access_path` the recording's id), checked as a console's is: Origin, the
 * store's hash, expiry; a refusal is an HTTP status with an empty body before the 101. No admin
 * credential ever reaches the browser.
 *
 * The recording is decoded here (`rfb/recording/player.ts`); the browser gets pixels, paced by
 * what it asks for, so a slow or paused page costs nothing:
 *   browser → JSON `{"op":"seek","t":ms,"id":n}` | `{"op":"next","until":ms,"id":n}`
 *   proxy → JSON `{"type":"info",...}` once, `{"type":"seeked","id","t","keyframeAt"}`,
 *           `{"type":"span","id","until","more"}`; binary frames, each one screen change:
 *           [kind u8: 1 whole screen, 2 update][0][rects u16][time u32][width u16][height u16]
 *           [op id u32] then rects × [x y w h u16], then zlib-deflated RGBA of the rects in order.
 * Each socket plays one recording; at most `maxPlayers` play at once in a process (decoding is
 * CPU), and a socket quiet for `idleMs` is closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { deflateSync } from 'node:zlib';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { asGatewayError, GatewayError } from '../errors.ts';
import { upgradeProblem } from '../http/request-checks.ts';
import { tokenFromRequest } from '../http/token-source.ts';
import { RecordingPlayer, type PlaybackUpdate } from '../rfb/recording/player.ts';
import type { Framebuffer, Rect } from '../rfb/framebuffer/types.ts';
import type { RecordingStore } from '../store/recordings.ts';
import { hashToken, tokenLogId, type TokenStore } from '../store/types.ts';
import { checkOriginHost, checkOriginScheme } from './origin.ts';
import { writeRefusal } from './refusal.ts';

export const PLAYBACK_PATH = '/porthole/playback';
export const RECORDING_CONSOLE_TYPE = 'rfb-recording';
/** A browser's command is a short JSON object. */
const MAX_COMMAND = 1024;
/** Most recording time one `next` may ask for (the page asks for about a second at a time). */
const MAX_SPAN_MS = 60_000;

export interface PlaybackOptions {
  readonly allowedOrigins: readonly string[];
  /** This host's name: a recording written elsewhere is not on this disk. */
  readonly hostname: string;
  readonly maxPlayers?: number;
  readonly idleMs?: number;
}

export interface PlaybackDeps {
  readonly tokens: TokenStore;
  readonly recordings: RecordingStore;
  readonly log: Logger;
}

export interface PlaybackEndpoint {
  /** Takes the upgrade when it is for the playback path (true), else leaves it (false). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Players open now. */
  readonly playing: number;
  close(): Promise<void>;
}

export function createPlaybackEndpoint(opts: PlaybackOptions, deps: PlaybackDeps): PlaybackEndpoint {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_COMMAND, clientTracking: false });
  const open = new Set<Playback>();
  const maxPlayers = opts.maxPlayers ?? 16;
  const idleMs = opts.idleMs ?? 10 * 60_000;

  async function accept(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const problem = upgradeProblem(req);
    if (problem) throw problem;
    const origin = checkOriginHost(req.headers, opts.allowedOrigins);
    const token = tokenFromRequest(req.url ?? '/', req.headers.cookie);
    if (token === undefined) throw new GatewayError('TOKEN_MISSING', 'no playback token in the request', { status: 400 });
    const found = await deps.tokens.lookup(token);
    if (found.status === 'unknown') throw new GatewayError('TOKEN_UNKNOWN', 'unknown or revoked playback token', { status: 403 });
    if (found.status === 'expired') throw new GatewayError('TOKEN_EXPIRED', 'expired playback token', { status: 403 });
    const t = found.token;
    checkOriginScheme(origin, t.accessUrlBase);
    if (t.consoleType !== RECORDING_CONSOLE_TYPE || !t.internalAccessPath) throw new GatewayError('TOKEN_WRONG_CONSOLE_TYPE', `token is for a ${t.consoleType} console, not a recording's playback`, { status: 403 });
    const record = await deps.recordings.get(t.internalAccessPath);
    if (!record || record.serverId !== t.instanceUuid) throw new GatewayError('NOT_FOUND', `recording ${t.internalAccessPath} is not listed`, { status: 404 });
    if (record.proxyHost !== opts.hostname) throw new GatewayError('CONFLICT', `recording ${record.id} is on host ${record.proxyHost}`, { status: 409 });
    if (open.size >= maxPlayers) throw new GatewayError('CONSOLE_LIMIT_TOTAL', `${open.size} recordings are playing on this proxy (at most ${maxPlayers})`, { status: 503, retryAfter: 10 });
    if (socket.destroyed) return;
    const player = await RecordingPlayer.open(record.path);
    if (socket.destroyed) {
      await player.close();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const p = new Playback(ws, player, idleMs, deps.log, () => open.delete(p));
      open.add(p);
      deps.log.info({ event: 'playback', recording: record.id, tokenHash: tokenLogId(hashToken(token), true), builtIndex: player.builtIndex, keyframes: player.keyframes.length, failure: player.failure }, `playing recording ${record.id}${player.builtIndex ? ` (keyframes built: ${player.keyframes.length})` : ''}`);
      p.start(record.serverName);
    });
  }

  return {
    upgrade(req, socket, head) {
      const path = (req.url ?? '/').split('?', 1)[0];
      if (path !== PLAYBACK_PATH) return false;
      socket.on('error', () => socket.destroy());
      accept(req, socket, head).catch((err: unknown) => {
        const e = asGatewayError(err);
        deps.log.warn({ event: 'refused', code: e.code, part: 'playback' }, `playback refused: ${e.message}`);
        writeRefusal(socket, e.status, e.retryAfter === undefined ? {} : { 'Retry-After': e.retryAfter });
      });
      return true;
    },
    get playing() {
      return open.size;
    },
    async close() {
      await Promise.all([...open].map((p) => p.close(1001, 'proxy shutting down')));
      wss.close();
    },
  };
}

interface Command {
  readonly op: 'seek' | 'next';
  readonly id: number;
  readonly t?: number;
  readonly until?: number;
}

/** One browser playing one recording: its commands run one at a time, in order. */
class Playback {
  private queue: Promise<void> = Promise.resolve();
  private idle: NodeJS.Timeout | undefined;
  private closed = false;
  /** Recording time the browser was last brought to (a seek's or a span's end). */
  private position = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly player: RecordingPlayer,
    private readonly idleMs: number,
    private readonly log: Logger,
    private readonly gone: () => void,
  ) {}

  start(serverName: string | null): void {
    const ws = this.ws;
    ws.on('error', () => void this.close(1011, 'error'));
    ws.on('close', () => void this.close(1000, 'closed'));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.touch();
      const cmd = isBinary ? undefined : parseCommand(data);
      if (!cmd) {
        void this.close(1002, 'bad playback command');
        return;
      }
      this.queue = this.queue.then(() => this.run(cmd)).catch((err: unknown) => {
        this.log.warn({ event: 'playback', err: (err as Error)?.message }, `playback failed: ${(err as Error)?.message}`);
        void this.close(1011, 'playback failed');
      });
    });
    const h = this.player.header;
    const init = h.serverInit ? Buffer.from(h.serverInit, 'base64') : Buffer.alloc(4);
    this.sendJson({ type: 'info', durationMs: this.player.durationMs, width: init.readUInt16BE(0), height: init.readUInt16BE(2), serverName: serverName ?? h.serverName ?? null, viewer: h.viewer ?? null, startedAt: h.startedAt, keyframes: this.player.keyframes.map((k) => k.time), builtIndex: this.player.builtIndex, truncated: this.player.truncated });
    this.touch();
  }

  async close(code: number, reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idle);
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), 2000).unref();
    this.gone();
    await this.queue.catch(() => {});
    await this.player.close();
  }

  private touch(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.close(1000, 'playback idle'), this.idleMs);
    this.idle.unref();
  }

  private async run(cmd: Command): Promise<void> {
    if (this.closed) return;
    if (cmd.op === 'seek') {
      const r = await this.player.seek(cmd.t ?? 0);
      this.position = r.time;
      if (this.closed) return;
      const fb = r.framebuffer;
      this.sendRects(1, r.time, cmd.id, fb, [{ x: 0, y: 0, width: fb.width, height: fb.height }]);
      this.sendJson({ type: 'seeked', id: cmd.id, t: r.time, keyframeAt: r.keyframeAt });
      return;
    }
    // a span is bounded, so one command cannot make the proxy decode and queue a whole recording
    const until = Math.min(cmd.until ?? 0, this.position + MAX_SPAN_MS);
    this.position = Math.max(this.position, until);
    const more = await this.player.advance(until, (u: PlaybackUpdate) => {
      const fb = u.framebuffer;
      this.sendRects(u.full ? 1 : 2, u.time, cmd.id, fb, u.full ? [{ x: 0, y: 0, width: fb.width, height: fb.height }] : clip(u.rects, fb));
    });
    if (this.closed) return;
    this.sendJson({ type: 'span', id: cmd.id, until, more });
  }

  /** One screen change: the rectangles' pixels, copied now (the decoder goes on), deflated. */
  private sendRects(kind: number, time: number, id: number, fb: Framebuffer, rects: readonly Rect[]): void {
    if (rects.length === 0 || this.closed) return;
    const head = Buffer.alloc(16 + rects.length * 8);
    head.writeUInt8(kind, 0);
    head.writeUInt16BE(rects.length, 2);
    head.writeUInt32BE(Math.max(0, Math.floor(time)), 4);
    head.writeUInt16BE(fb.width, 8);
    head.writeUInt16BE(fb.height, 10);
    head.writeUInt32BE(id >>> 0, 12);
    let size = 0;
    rects.forEach((r, i) => {
      head.writeUInt16BE(r.x, 16 + i * 8);
      head.writeUInt16BE(r.y, 18 + i * 8);
      head.writeUInt16BE(r.width, 20 + i * 8);
      head.writeUInt16BE(r.height, 22 + i * 8);
      size += r.width * r.height * 4;
    });
    const pixels = Buffer.allocUnsafe(size);
    let o = 0;
    const row = fb.width * 4;
    for (const r of rects) {
      for (let y = r.y; y < r.y + r.height; y++) {
        const from = y * row + r.x * 4;
        pixels.set(fb.pixels.subarray(from, from + r.width * 4), o);
        o += r.width * 4;
      }
    }
    this.ws.send(Buffer.concat([head, deflateSync(pixels, { level: 1 })]), { binary: true });
  }

  private sendJson(v: unknown): void {
    if (!this.closed && this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(v));
  }
}

/** Damage within the screen (a resize may leave rectangles of the old size behind). */
function clip(rects: readonly Rect[], fb: Framebuffer): Rect[] {
  const out: Rect[] = [];
  for (const r of rects) {
    const width = Math.min(r.width, fb.width - r.x);
    const height = Math.min(r.height, fb.height - r.y);
    if (width > 0 && height > 0) out.push({ x: r.x, y: r.y, width, height });
  }
  return out;
}

function parseCommand(data: Buffer): Command | undefined {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  const c = v as Partial<Command>;
  const id = typeof c?.id === 'number' && Number.isSafeInteger(c.id) && c.id >= 0 ? c.id : undefined;
  if (id === undefined) return undefined;
  const finite = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (c.op === 'seek' && finite(c.t)) return { op: 'seek', id, t: c.t };
  if (c.op === 'next' && finite(c.until)) return { op: 'next', id, until: c.until };
  return undefined;
}
