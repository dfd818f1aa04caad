/**
 * @module web/novnc-app
 * The operator's choice of noVNC page. When `[DEFAULT] web` holds noVNC's own app (Debian's
 * `/usr/share/novnc`: `vnc.html`, `vnc_lite.html`, `app/`, `core/`), an operator who pointed the
 * option there wants that app, as websockify serves it: its `vnc.html` and `vnc_lite.html` answer
 * at their own paths (the app reads the token from `path` as Porthole's page does). The paths Nova
 * hands out (`/vnc_auto.html`, `/vnc.auto.html`) keep Porthole's page, which says the token's
 * state in words, unless `[porthole] console_page = web`: then the app's file of that name, or its
 * `vnc_lite.html` (which connects at once, as a console link should). Without the app, Porthole's
 * page answers at every path, as before.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type ConsolePageChoice = 'porthole' | 'web';

/** The paths Nova's `novncproxy_base_url` names; Porthole's page answers there unless told otherwise. */
const NOVA_PATHS = ['/vnc_auto.html', '/vnc.auto.html'];
/** The app's own pages, served at their names whenever the app is there. */
const APP_PATHS = ['/vnc.html', '/vnc_lite.html'];

/** Whether `dir` holds noVNC's app (its pages, its UI module and noVNC's core beside them). */
export function isNoVncApp(dir: string | null): dir is string {
  if (!dir) return false;
  const file = (rel: string) => {
    try {
      return statSync(join(dir, rel)).isFile();
    } catch {
      return false;
    }
  };
  return file('vnc.html') && file('vnc_lite.html') && file('app/ui.js') && file('core/rfb.js');
}

/**
 * For each of `paths` (the noVNC page's), the app's file to serve there (relative to `appDir`),
 * or null for Porthole's page.
 */
export function noVncPageFiles(paths: readonly string[], appDir: string | null, choice: ConsolePageChoice): ReadonlyMap<string, string | null> {
  const out = new Map<string, string | null>();
  for (const path of paths) {
    if (!isNoVncApp(appDir)) out.set(path, null);
    else if (APP_PATHS.includes(path)) out.set(path, path.slice(1));
    else if (NOVA_PATHS.includes(path) && choice === 'web') out.set(path, existsSync(join(appDir, path.slice(1))) ? path.slice(1) : 'vnc_lite.html');
    else out.set(path, null);
  }
  return out;
}

/** The start-up line saying which page answers where. */
export function describeNoVncPages(files: ReadonlyMap<string, string | null>, appDir: string | null): string {
  const own = [...files].filter(([, f]) => f === null).map(([p]) => p);
  const app = [...files].filter(([, f]) => f !== null).map(([p, f]) => (p === `/${f}` ? p : `${p} (its ${f})`));
  if (app.length === 0) return `noVNC console page: Porthole's at ${own.join(', ')}`;
  return `noVNC console pages: noVNC's app from [DEFAULT] web ${appDir} at ${app.join(', ')}${own.length ? `; Porthole's page at ${own.join(', ')}` : ''} ([porthole] console_page)`;
}
