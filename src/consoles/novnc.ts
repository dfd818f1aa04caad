/**
 * @module consoles/novnc
 * The noVNC console, as nova-novncproxy serves it: `[vnc] novncproxy_host:novncproxy_port`,
 * token console type `novnc`, the server's `vnc` endpoint, URLs
 * `<novncproxy_base_url>?path=%3Ftoken%3D<token>`, the WebSocket at `/` and `/websockify`, the
 * noVNC page at `/vnc.html`, `/vnc_lite.html`, `/vnc_auto.html`, `/vnc.auto.html`, and always the
 * RFB security proxy (as nova-novncproxy always runs its RFBSecurityProxy).
 */
import { NOVNC_VIEW_ONLY } from '../proxy/view-only.ts';
import { NOVNC_PAGE } from '../web/pages.ts';
import { accessUrl, novncBaseUrl } from './console-url.ts';
import type { ConsoleKind } from './types.ts';

export const novnc: ConsoleKind = {
  name: 'novnc',
  protocol: 'vnc',
  // a view-only token is refused unless it joins a shared console (`proxy/upgrade.ts`)
  consoleTypes: ['novnc', NOVNC_VIEW_ONLY],
  title: 'noVNC console proxy',
  listener: (config) => ({
    enabled: config.vnc.enabled,
    host: config.vnc.novncproxy_host,
    port: config.vnc.novncproxy_port,
    options: { host: '[vnc] novncproxy_host', port: '[vnc] novncproxy_port' },
  }),
  baseUrl: novncBaseUrl,
  accessUrl: (base, token) => accessUrl(base, 'novnc', token),
  endpoint: (server) => server.vnc,
  paths: ['/', '/websockify'],
  rfb: true,
  page: NOVNC_PAGE,
};
