/**
 * @module proxy/token-source
 * Moved to `src/http/token-source.ts` (the console pages read tokens the same way); this
 * re-export stands until `proxy/upgrade.ts` imports from there, then goes.
 */
export { tokenFromRequest } from '../http/token-source.ts';
