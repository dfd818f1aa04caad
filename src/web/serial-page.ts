/**
 * @module web/serial-page
 * The serial console's page, `/serial.html?token=<token>` (`static/serial.html`, `serial.js`):
 * an xterm.js terminal on the listener's WebSocket, with the token's state in words as the noVNC
 * page has it. xterm.js and its fit addon are served from their npm packages (`@xterm/xterm`,
 * `@xterm/addon-fit`) as the noVNC page's modules are from `@novnc/novnc`. xterm.js writes
 * `<style>` elements and colour attributes of its own, so this page's CSP allows inline styles;
 * scripts stay `'self'`.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ConsolePage } from './pages.ts';

const require = createRequire(import.meta.url);
// each package's `main` is lib/<name>.js: its directory holds the ES module (`.mjs`) too
const XTERM_DIR = dirname(dirname(require.resolve('@xterm/xterm')));
const FIT_LIB = dirname(require.resolve('@xterm/addon-fit'));

export const SERIAL_PAGE: ConsolePage = {
  paths: ['/serial.html'],
  file: 'serial.html',
  assets: {
    '/xterm/lib/': join(XTERM_DIR, 'lib'),
    '/xterm/css/': join(XTERM_DIR, 'css'),
    '/xterm/addon-fit/': FIT_LIB,
  },
  inlineStyles: true,
};
