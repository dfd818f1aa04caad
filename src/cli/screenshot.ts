/**
 * @module cli/screenshot
 * `porthole server screenshot ID|NAME -o FILE.png [--width N] [--json]`: the same screenshot
 * service the API calls (`proxy/screenshots.ts`), by a short connection of its own (a CLI
 * process holds no live console), with the security proxy's settings of this config and the
 * server's own backend auth. The file is created (or truncated) with mode 0600 and set to 0600
 * if it existed: a screen can show anything a console shows. The audit trail records
 * `screenshot.taken` with the operating-system user as actor.
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { GatewayError } from '../errors.ts';
import type { Server } from '../inventory/types.ts';
import { ScreenshotService, screenshotOptions } from '../proxy/screenshots.ts';
import { rfbProxyOptions } from '../rfb/config.ts';
import { onePositional, optionString, print, requireOption, UsageError, type CommandRun } from './args.ts';
import { withAudit, withStores, type Stores } from './stores.ts';

export const serverScreenshotCommand: CommandRun = async (a, l) => {
  const ref = onePositional(a, 'server (ID or NAME)');
  const file = requireOption(a, 'output');
  if (file === '-' && a.json) throw new UsageError('--json with -o -: the PNG and the JSON would both go to standard output');
  const widthText = optionString(a, 'width');
  let width: number | undefined;
  if (widthText !== undefined) {
    width = Number(widthText);
    if (!/^\d{1,5}$/.test(widthText) || width < 16) throw new UsageError(`--width ${widthText}: expected a whole number of at least 16`);
  }
  const loaded = l();
  // the config's VeNCrypt files and password file are read (and checked) before anything is opened
  const rfb = rfbProxyOptions(loaded.config);
  return withStores(loaded, (stores) =>
    withAudit(loaded, stores, async (by) => {
      const server = await findServer(stores, ref);
      const service = new ScreenshotService(screenshotOptions(loaded.config, rfb));
      const shot = await service.takeScreenshot(server, { ...(width !== undefined ? { width } : {}), by });
      if (file === '-') {
        await new Promise<void>((resolve, reject) => process.stdout.write(shot.png, (err) => (err ? reject(err) : resolve())));
        return 0;
      }
      writePrivate(file, shot.png);
      print(a, { file, width: shot.width, height: shot.height, bytes: shot.png.length }, `${file}: ${shot.width}x${shot.height} PNG of server ${server.id} (${server.name}), ${shot.png.length} bytes`);
      return 0;
    }),
  );
};

/** A server by its id, else by its name (one server of that name: two are a usage error asking for the id). */
async function findServer(stores: Stores, ref: string): Promise<Server> {
  const byId = await stores.inventory.get(ref.toLowerCase());
  if (byId) return byId;
  const named = (await stores.inventory.list()).filter((s) => s.name === ref);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) throw new UsageError(`${named.length} servers are named ${ref} (${named.map((s) => s.id).join(', ')}): give the id`);
  throw new GatewayError('NOT_FOUND', `no server ${ref} in the inventory (porthole server list shows them)`, { status: 404 });
}

/** Written with mode 0600, also over a file that existed with another mode. */
function writePrivate(file: string, bytes: Buffer): void {
  const fd = openSync(file, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done);
  } finally {
    closeSync(fd);
  }
}
