/**
 * @module proxy/view-only
 * The console types of view-only tokens, in a module of its own so that the console kinds (and
 * the short CLI commands that load them) name them without loading the serial hub. Defined in
 * `store/view-only.ts`, where the API (which may not import the proxy) names them too.
 */
export { NOVNC_VIEW_ONLY, SERIAL_VIEW_ONLY } from '../store/view-only.ts';
