/**
 * @module store/view-only
 * The console types of view-only tokens: values of `console_auth_tokens.console_type` that
 * Porthole mints and the proxies honour. Here, beside the token contract, so that both the proxy
 * (which drops a watcher's input) and the API (which mints an admin's shadow) name them; the
 * proxy re-exports them from `proxy/view-only.ts`.
 */

/**
 * The console type of a view-only serial token: a viewer of the kept console who cannot type.
 * A console type rather than a flag beside the token, so that it needs no table of Porthole's
 * own (it works on a Nova cell database and on Redis alike) and so that it fails closed: Nova's
 * nova-serialproxy, an older Porthole, or Porthole without serial_keep_attached refuse it (wrong
 * console type) instead of letting its viewer type.
 */
export const SERIAL_VIEW_ONLY = 'serial-view-only';

/**
 * The console type of a view-only noVNC token: a watcher of a shared console (or an admin's
 * shadow) whose keys, pointer and clipboard go nowhere. Fails closed as `SERIAL_VIEW_ONLY` does:
 * where the server's console is not shared, the proxy refuses it rather than relay its input.
 */
export const NOVNC_VIEW_ONLY = 'novnc-view-only';
