/**
 * @module proxy/view-only
 * The console type of view-only serial tokens, in a module of its own so that the console kinds
 * (and the short CLI commands that load them) name it without loading the serial hub.
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
 * shadow) whose keys, pointer and clipboard go nowhere. Fails closed as `SERIAL_VIEW_ONLY` does.
 */
export const NOVNC_VIEW_ONLY = 'novnc-view-only';
