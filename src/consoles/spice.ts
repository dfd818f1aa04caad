/**
 * @module consoles/spice
 * The SPICE console, as nova-spicehtml5proxy serves it: `[spice] html5proxy_host:html5proxy_port`
 * (switched by `[porthole] spicehtml5proxy_enabled`), token console type `spice-html5`, the
 * server's `spice` endpoint, URLs `<html5proxy_base_url>?token=<token>` (nova/compute/manager.py
 * get_spice_console: `access_url_base=CONF.spice.html5proxy_base_url`, then
 * ConsoleAuthToken.access_url), the spice-html5 client of `[DEFAULT] web` at `/spice_auto.html`
 * and `/spice.html`, and a plain relay: SPICE's own link handshake runs between the browser and
 * QEMU, as websockify relays it.
 *
 * WebSocket paths: every path, as nova-spicehtml5proxy (websockify takes an upgrade wherever it
 * comes): spice_auto.html connects to `/<path>`, `path` being a URL parameter that defaults to
 * `websockify`, and spice.html to `/`. The subprotocol: spice-html5 asks for `binary`, which is
 * chosen when offered; a client that offers none gets none (websockify's CompatibleWebSocket).
 *
 * TLS port: only the plain port is relayed. Nova's spicehtml5proxy relays to the token's `port`
 * and never to `tls_port`, which Nova 2025.1 added for `spice-direct` consoles (a native SPICE
 * client behind a SPICE-aware proxy); with Nova's `[spice] require_secure` QEMU refuses plain
 * channels, and spice-html5 cannot be served there by Nova either. The README says so.
 */
import type { LoadedConfig } from '../config/load.ts';
import { SPICE_PAGE } from '../web/spice-page.ts';
import { accessUrl, baseFollowingPort } from './console-url.ts';
import type { ConsoleKind } from './types.ts';

export const spice: ConsoleKind = {
  name: 'spice',
  protocol: 'spice',
  consoleTypes: ['spice-html5'],
  title: 'SPICE console proxy',
  listener: (config) => ({
    enabled: config.porthole.spicehtml5proxy_enabled,
    host: config.spice.html5proxy_host,
    port: config.spice.html5proxy_port,
    options: { host: '[spice] html5proxy_host', port: '[spice] html5proxy_port' },
  }),
  baseUrl: spiceBaseUrl,
  accessUrl: (base, token) => accessUrl(base, 'spice-html5', token),
  endpoint: (server) => server.spice ?? null,
  paths: 'any',
  rfb: false,
  page: SPICE_PAGE,
};

/**
 * `[spice] html5proxy_base_url`; left at Nova's default, it follows the port the proxy is
 * configured with (or listens on), as the noVNC listener's does.
 */
function spiceBaseUrl(loaded: LoadedConfig, listeningPort?: number): string {
  const { spice: o } = loaded.config;
  return baseFollowingPort(loaded, 'spice.html5proxy_base_url', o.html5proxy_base_url, listeningPort ?? o.html5proxy_port);
}
