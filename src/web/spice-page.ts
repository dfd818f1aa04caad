/**
 * @module web/spice-page
 * The SPICE console's pages: the spice-html5 client (Debian package `spice-html5`) from
 * `[DEFAULT] web` (Nova's option, whose default is that package's directory) at the names Nova's
 * deployments hand out, `/spice_auto.html` (html5proxy_base_url's default; it takes `?token=`
 * and sets it as the `token` cookie its WebSocket then carries) and `/spice.html` (host and port
 * typed in); with Porthole's `spice-state.js` saying the token's state in words. Without the
 * client, `spice-missing.html` says which package and option.
 */
import type { ConsolePage } from './pages.ts';

export const SPICE_PAGE: ConsolePage = {
  paths: ['/spice_auto.html', '/spice.html'],
  file: 'spice-missing.html',
  client: { files: { '/spice_auto.html': 'spice_auto.html', '/spice.html': 'spice.html' }, script: 'spice-state.js' },
};
