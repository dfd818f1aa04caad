/**
 * @module proxy/http-checks
 * Moved to `src/http/request-checks.ts` (the console pages check requests the same way); this
 * re-export stands until `proxy/upgrade.ts` imports from there, then goes.
 */
export { upgradeProblem } from '../http/request-checks.ts';
