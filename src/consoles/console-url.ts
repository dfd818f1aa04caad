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
  return baseFollowingPort(loaded, 'vnc.novncproxy_base_url', loaded.config.vnc.novncproxy_base_url, listeningPort ?? loaded.config.vnc.novncproxy_port);
}

/**
 * `base` (the value of option `key`, `section.name`) as set, or, left at Nova's default, with
 * the port `port` (the one configured or actually listened on): the rule of every console kind.
 */
export function baseFollowingPort(loaded: LoadedConfig, key: string, base: string, port: number): string {
  if (loaded.provenance.has(key)) return base;
  const url = new URL(base);
  url.port = String(port);
  return url.toString();
}
