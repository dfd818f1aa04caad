/**
 * @module consoles/serial
 * The serial console, as nova-serialproxy serves it: `[serial_console] serialproxy_host:
 * serialproxy_port` (switched in `porthole serve` by `[porthole] serialproxy_enabled`), token
 * console type `serial`, the server's `serial` endpoint (a QEMU/libvirt TCP chardev), and a plain
 * byte relay: no RFB, nothing between the WebSocket and the port but the bytes.
 *
 * URLs: `<[serial_console] base_url>?token=<token>`, as Nova builds them
 * (nova/compute/manager.py get_serial_console: `access_url_base=CONF.serial_console.base_url`,
 * then ConsoleAuthToken.access_url: `'%s?token=%s'`); Nova's default base is
 * `ws://127.0.0.1:6083/`, and left at it the port follows the listener's. That URL is the
 * WebSocket itself. A person who wants a page is given one by setting `base_url` to the page,
 * `http://HOST:6083/serial.html`: the URL is then `http://HOST:6083/serial.html?token=<token>`,
 * the xterm.js page (`src/web/serial-page.ts`), which opens the WebSocket on its own address.
 *
 * WebSocket paths: every path, as nova-serialproxy (websockify takes an upgrade wherever it
 * comes): the path of a serial console URL is whatever the operator wrote in `base_url`, so a
 * drop-in cannot choose a list. Subprotocols as websockify's CompatibleWebSocket: `binary` when
 * offered, none when none is offered, HTTP 400 when some are offered without `binary` (the check
 * is the shared upgrade's, `src/proxy/upgrade.ts`).
 */
import { SERIAL_VIEW_ONLY } from '../proxy/view-only.ts';
import { SERIAL_PAGE } from '../web/serial-page.ts';
import { accessUrl, baseFollowingPort } from './console-url.ts';
import type { ConsoleKind } from './types.ts';

/**
 * The base of a serial console's page URL (`/serial.html`, `src/web/serial-page.ts`) from the
 * kind's base URL: the base itself when it is a page already (http, https: the operator set
 * `base_url` to it), else the page beside the WebSocket's path (`ws://H:6083/` gives
 * `http://H:6083/serial.html`; a path prefix is kept, as a reverse proxy forwarding it would
 * want) on the scheme's HTTP counterpart (ws: http, wss: https).
 */
export function serialPageBase(base: string): string {
  const url = new URL(base);
  if (url.protocol === 'http:' || url.protocol === 'https:') return base;
  const page = new URL(SERIAL_PAGE.paths[0]!.replace(/^\//, ''), url);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}${page.href.slice(page.protocol.length)}`;
}

export const serial: ConsoleKind = {
  name: 'serial',
  protocol: 'serial',
  // serial-view-only: a viewer of a kept console who cannot type (`proxy/serial-hub.ts`)
  consoleTypes: ['serial', SERIAL_VIEW_ONLY],
  title: 'serial console proxy',
  listener: (config) => ({
    enabled: config.porthole.serialproxy_enabled,
    host: config.serial_console.serialproxy_host,
    port: config.serial_console.serialproxy_port,
    options: { host: '[serial_console] serialproxy_host', port: '[serial_console] serialproxy_port' },
  }),
  baseUrl: (loaded, listeningPort) =>
    baseFollowingPort(loaded, 'serial_console.base_url', loaded.config.serial_console.base_url, listeningPort ?? loaded.config.serial_console.serialproxy_port),
  accessUrl: (base, token) => accessUrl(base, 'serial', token),
  endpoint: (server) => server.serial ?? null,
  paths: 'any',
  rfb: false,
  page: SERIAL_PAGE,
};
