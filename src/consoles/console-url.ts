/**
 * @module consoles/console-url
 * Console URLs as Nova builds them (`ConsoleAuthToken.access_url`): for noVNC
 * `<novncproxy_base_url>?path=%3Ftoken%3D<token>` (noVNC ≥ 1.1 takes the token only inside
 * `path`), for the other console kinds `<base>?token=<token>`.
 */
import type { LoadedConfig } from '../config/load.ts';

export function accessUrl(accessUrlBase: string, consoleType: string, token: string): string {
  if (consoleType === 'novnc') {
    return `${accessUrlBase}?${new URLSearchParams({ path: `?token=${token}` }).toString()}`;
  }
  return `${accessUrlBase}?token=${encodeURIComponent(token)}`;
}

/**
 * `[vnc] novncproxy_base_url`; left at Nova's default, it follows the port the proxy is
 * configured with (or, when given, the port it actually listens on), so `--vnc-novncproxy_port`
 * alone gives working URLs.
 */
export function novncBaseUrl(loaded: LoadedConfig, listeningPort?: number): string {
  const base = loaded.config.vnc.novncproxy_base_url;
  if (loaded.provenance.has('vnc.novncproxy_base_url')) return base;
  const url = new URL(base);
  url.port = String(listeningPort ?? loaded.config.vnc.novncproxy_port);
  return url.toString();
}
