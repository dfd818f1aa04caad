/**
 * @module proxy/shared-types
 * The public face of shared consoles (`[porthole] shared_consoles`, `server add --shared-consoles`):
 * what the upgrade path, the control channel (the console page's viewers panel), the admin
 * shadow, the screenshot service and the sessions registry may ask of the hub
 * (`shared-hub.ts`) and of one shared console (`shared-console.ts`). One backend RFB connection
 * per server, held by Porthole; many viewers, each its own RFB server stream
 * (`src/rfb/shared/`); at most one viewer in control (its keys, pointer and clipboard reach the
 * machine, everyone else's go nowhere).
 *
 * Viewer ids are the hub's own (random), shown to every viewer of the console: a control action
 * names the viewer it acts for by id. The `viewerKey` the console page puts in its WebSocket URL
 * (`&viewer=<uuid>`) is never shown to anyone: it is how the page's control channel finds its
 * own viewer (`SharedConsoles.viewerByKey`), so that one viewer cannot act for another by
 * reading the viewers list.
 */
import type { Duplex } from 'node:stream';
import type { ConsoleEndpoint, Server } from '../inventory/types.ts';
import type { Framebuffer } from '../rfb/framebuffer/types.ts';

export type ViewerRole = 'control' | 'view';

/** One viewer as every viewer of the console sees it (the viewers panel, the admin API). */
export interface SharedViewerInfo {
  /** The hub's id of this viewer (random, not the page's viewer key). */
  readonly id: string;
  /** The token's label, else the API user who minted it, else `viewer N` (N: order of arrival). */
  readonly name: string;
  readonly role: ViewerRole;
  /** A `novnc-view-only` token's viewer (a watcher or an admin's shadow): can never take control. */
  readonly viewOnly: boolean;
  /** When it joined (epoch ms). */
  readonly since: number;
  /** Its console session's id (the registry's), when the upgrade path gave one. */
  readonly sessionId: string | null;
}

/** A pending request for control: `from` asked, the controller may answer until `deadline` (epoch ms). */
export interface ControlRequest {
  readonly from: string;
  readonly at: number;
  readonly deadline: number;
}

/** A shared console as a snapshot: who is there, who has control, who asked for it. */
export interface SharedConsoleState {
  /** The shared console's id: the one backend connection's, the same for all its viewers (`LiveSessionInfo.sharedConsole`). */
  readonly id: string;
  readonly serverId: string;
  /** Oldest first. */
  readonly viewers: readonly SharedViewerInfo[];
  /** The controller's viewer id; null: nobody has control (everyone left is view-only, or control was released). */
  readonly controller: string | null;
  readonly request: ControlRequest | null;
}

/**
 * What a shared console tells its listeners. Every event carries the whole state after it (the
 * viewers panel redraws from it); `kind` says what changed.
 * - `joined` / `left`: `viewer` came or went.
 * - `control`: control moved (`viewer`: the new controller, null: nobody); `why` says how.
 * - `requested`: `viewer` asks for control; the controller should be asked (`answerRequest`).
 * - `declined`: the controller said no to `viewer`'s request.
 * - `closed`: the backend connection is gone (every viewer's session ends "backend closed").
 */
export type SharedConsoleEvent =
  | { readonly kind: 'joined' | 'left'; readonly viewer: string; readonly state: SharedConsoleState }
  | { readonly kind: 'control'; readonly viewer: string | null; readonly why: ControlChange; readonly state: SharedConsoleState }
  | { readonly kind: 'requested' | 'declined'; readonly viewer: string; readonly state: SharedConsoleState }
  | { readonly kind: 'closed'; readonly state: SharedConsoleState };

/**
 * How control moved: `first` (the first viewer), `token` (a token whose extras say `control`),
 * `given` (the controller handed it over, or accepted a request), `timeout` (the controller did
 * not answer a request within 10 s), `idle` (the controller had given no input for 30 s when
 * someone asked), `released`, `left` (the controller left: the longest-present viewer that is not
 * view-only takes it).
 */
export type ControlChange = 'first' | 'token' | 'given' | 'timeout' | 'idle' | 'released' | 'left';

/** What a control action answers. */
export type ControlAnswer =
  /** Done (control moved, or the viewer already had it). */
  | 'granted'
  /** A request is now waiting for the controller's answer (or its 10 s). */
  | 'asked'
  /** Not allowed: a view-only viewer, a viewer that is not the controller giving control away, an unknown viewer. */
  | 'refused';

/** The control API of one shared console (H4b's control channel and admin shadow call this). */
export interface SharedConsoleControl {
  readonly id: string;
  readonly serverId: string;
  state(): SharedConsoleState;
  /**
   * `viewerId` asks for control: granted at once when nobody has it or the controller has been
   * idle 30 s; otherwise the controller is asked (`requested` event) and control moves when it
   * accepts, or when it has not answered within 10 s.
   */
  requestControl(viewerId: string): ControlAnswer;
  /** The controller's answer to the pending request of `requesterId`. */
  answerRequest(controllerId: string, requesterId: string, accept: boolean): ControlAnswer;
  /** The controller `fromViewerId` hands control to `toViewerId` (who must not be view-only). */
  giveControl(fromViewerId: string, toViewerId: string): ControlAnswer;
  /** The controller lets go: nobody has control until someone asks. */
  releaseControl(viewerId: string): ControlAnswer;
  /** Listens to every change; returns what stops listening. */
  subscribe(listener: (event: SharedConsoleEvent) => void): () => void;
}

/** What a viewer asks for when it attaches (from its token, its extras and its WebSocket URL). */
export interface SharedAttachOptions {
  /** A `novnc-view-only` token: never in control. */
  readonly viewOnly: boolean;
  /** The token's extras say `control`: takes control on joining (unless view-only). */
  readonly control: boolean;
  /** The token's label ?? the API user who minted it; null: `viewer N`. */
  readonly name: string | null;
  /** The page's `&viewer=<uuid>` (at most 64 characters of [A-Za-z0-9-]); null when it sent none. */
  readonly viewerKey: string | null;
  /** The console session's id (the registry's), for role changes (`onRole`). */
  readonly sessionId?: string | null;
  /** The token's SHA-256: `viewerByKey` may ask for it to match. */
  readonly tokenHash?: string | null;
}

/** A viewer's stream on a shared console: the Duplex the relay reads and writes in place of a backend socket. */
export interface SharedAttachment extends Duplex {
  readonly viewerId: string;
  /** The shared console's id (`LiveSessionInfo.sharedConsole`). */
  readonly consoleId: string;
  /** Its role when it joined. */
  readonly initialRole: ViewerRole;
  /** The console's recording id, when the console is recorded (`LiveSessionInfo.recording`). */
  readonly recording: string | null;
}

/** What the upgrade path, the control channel and the screenshot service ask of the hub. */
export interface SharedConsoles {
  /**
   * A viewer on `server`'s shared console at `endpoint` (the token's, checked against the
   * inventory already): dials and authenticates the backend when this is the console's first
   * viewer; rejects as a dial does when the backend cannot be reached or authenticated.
   */
  attach(server: Server, endpoint: ConsoleEndpoint, opts: SharedAttachOptions, signal?: AbortSignal): Promise<SharedAttachment>;
  /** The live framebuffer of `serverId`'s shared console, when one is up in this process (screenshots). */
  liveFramebuffer(serverId: string): Framebuffer | undefined;
  /** The shared console of `serverId` in this process. */
  console(serverId: string): SharedConsoleControl | undefined;
  /** Every shared console of this process. */
  consoles(): SharedConsoleControl[];
  /**
   * The viewer whose page sent `viewerKey` (and, when given, whose token's SHA-256 is
   * `tokenHash`): its console and its id. Undefined until it has attached.
   */
  viewerByKey(viewerKey: string, tokenHash?: string): { readonly console: SharedConsoleControl; readonly viewerId: string } | undefined;
  /** Listens to every event of every shared console of this process (new ones too); returns what stops listening. */
  subscribe(listener: (event: SharedConsoleEvent) => void): () => void;
}

/** How long the controller has to answer a request for control before control moves anyway. */
export const CONTROL_ANSWER_MS = 10_000;
/** A controller without input this long loses control to the first viewer who asks. */
export const CONTROL_IDLE_MS = 30_000;
/** How long the backend connection stays after its last viewer left (a page reload finds it). */
export const SHARED_LINGER_MS = 5_000;
