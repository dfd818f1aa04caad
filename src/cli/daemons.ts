/**
 * @module cli/daemons
 * The commands that run until a signal: `serve` (API and every enabled proxy), `api`,
 * `novncproxy`, `serialproxy` and `spicehtml5proxy` (the Nova daemons' drop-ins, each its kind's
 * listener alone), in one process or as the primary of
 * `[porthole] workers`; and the start-up summary with the demo console's URL.
 */
import type { LoadedConfig } from '../config/load.ts';
import { mintConsoleToken } from '../consoles/mint.ts';
import { novnc } from '../consoles/novnc.ts';
import { serial, serialPageBase } from '../consoles/serial.ts';
import { spice } from '../consoles/spice.ts';
import type { GatewayRun } from '../gateway.ts';
import type { Started } from '../workers.ts';
import type { CommandRun, ParsedArgs } from './args.ts';

/** The code of the daemons' commands; their help is in commands.ts. */
export const serveCommand: CommandRun = (a, l) => runServe(a, l, undefined);
export const apiCommand: CommandRun = (a, l) => runServe(a, l, { proxies: [], api: true });
export const novncproxyCommand: CommandRun = (a, l) => runServe(a, l, consoleDaemon(novnc.name));
/** nova-serialproxy's drop-in: the serial listener alone ([serial_console] serialproxy_host:serialproxy_port). */
export const serialproxyCommand: CommandRun = (a, l) => runServe(a, l, consoleDaemon(serial.name));
/** nova-spicehtml5proxy's drop-in: the SPICE listener alone ([spice] html5proxy_host:html5proxy_port). */
export const spicehtml5proxyCommand: CommandRun = (a, l) => runServe(a, l, consoleDaemon(spice.name));

/** A Nova console daemon's drop-in: the listener of one console kind (by name), without the API. */
export function consoleDaemon(kind: string): GatewayRun {
  return { proxies: [kind], api: false };
}

async function runServe(args: ParsedArgs, load: () => LoadedConfig, run: GatewayRun | undefined): Promise<number> {
  // imported here so that the short-lived subcommands do not load the proxy and the demo server
  const workers = await import('../workers.ts');
  if (workers.isWorker()) return workers.asWorker(async () => serve(load(), run, true));
  const loaded = load();
  const count = workers.workerCount(loaded.config);
  if (count > 1) return workers.runPrimary(loaded, { count, argv: args.argv, started: (s) => printStarted(loaded, s) });
  return serve(loaded, run, false);
}

/** Runs the gateway until a signal: the whole daemon, or one worker of `[porthole] workers`. */
async function serve(loaded: LoadedConfig, run: GatewayRun | undefined, worker: boolean): Promise<number> {
  const { createGateway } = await import('../gateway.ts');
  const workers = await import('../workers.ts');
  // a worker leaves what is done once to its primary, which prints the summary (workers.ts)
  const gateway = await createGateway(loaded, { run, ...(worker ? { once: false, log: workers.workerLogger(loaded.config) } : {}) });
  // SIGHUP (logrotate, systemd's ExecReload, the primary of [porthole] workers passing its own
  // on) reads the TLS certificates again; the logger reopens its file on it by itself
  // (log/sink.ts). Taken before a worker says it listens: the primary passes SIGHUP on from then on
  const onHangup = () => void gateway.reloadCertificates();
  process.on('SIGHUP', onHangup);
  // the main process tells systemd (Type=notify); a worker's primary does it for all of them
  const systemd = await import('./systemd.ts');
  const manager = worker ? undefined : systemd.serviceManager(gateway.log);
  if (worker) workers.reportListening(gateway);
  else await printStarted(loaded, gateway);
  manager?.ready(systemd.listeningStatus(gateway));
  await new Promise<void>((resolve) => {
    // SIGTERM (systemd, Kubernetes, a rolling restart) drains; SIGINT (Ctrl-C) closes at once,
    // also during a drain. A SIGTERM during the drain changes nothing: systemd sends it to every
    // process of the service alike, and with [porthole] workers the primary passes its own on
    let terminating = false;
    const stop = (signal: string) => {
      if (signal === 'SIGTERM' && terminating) return;
      terminating ||= signal === 'SIGTERM';
      const drainMs = signal === 'SIGTERM' ? loaded.config.porthole.drain_seconds * 1000 : 0;
      gateway.log.info({ event: 'stopping', signal, drainSeconds: drainMs / 1000 }, `received ${signal}, ${drainMs > 0 ? `draining console sessions (up to ${drainMs / 1000} s; SIGINT closes them at once)` : 'closing console sessions'}`);
      manager?.stopping(drainMs > 0 ? `draining console sessions (up to ${drainMs / 1000} s)` : 'closing console sessions');
      gateway.close({ drainMs }).then(resolve, resolve).finally(() => manager?.close());
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  return 0;
}

/**
 * The demo's serial console page URL (with a fresh token) for the start-up summary, when the demo
 * runs and so does the serial listener; else nothing. The page, not the WebSocket URL that Nova's
 * API hands out, as the VNC line gives a page: it is for a person with a browser.
 */
async function demoSerialLine(loaded: LoadedConfig, started: Started): Promise<string> {
  const { DEMO_SERVER_ID } = await import('../gateway.ts');
  const { proxyEntries } = await import('../workers.ts');
  const serialProxy = proxyEntries(started).find(([name]) => name === serial.name)?.[1];
  if (!started.demoSerial || !serialProxy) return '';
  const { url } = await mintConsoleToken(started.stores, {
    kind: serial,
    instanceUuid: DEMO_SERVER_ID,
    endpoint: { host: started.demoSerial.host, port: started.demoSerial.port },
    base: serialPageBase(serialProxy.baseUrl),
    ttl: loaded.config.consoleauth.token_ttl,
  });
  return `Serial console: ${url}\n\n`;
}

/** The start-up summary: the demo console's URLs (with fresh tokens), the compute API's. */
async function printStarted(loaded: LoadedConfig, started: Started): Promise<void> {
  const { DEMO_SERVER_ID } = await import('../gateway.ts');
  const { proxyEntries } = await import('../workers.ts');
  // the demo's VNC console: the noVNC listener's, whose endpoint is the server's vnc one
  const demoProxy = proxyEntries(started).find(([name]) => name === novnc.name)?.[1];
  if (started.demo && demoProxy) {
    const { url } = await mintConsoleToken(started.stores, {
      kind: novnc,
      instanceUuid: DEMO_SERVER_ID,
      endpoint: { host: started.demo.host, port: started.demo.port },
      base: demoProxy.baseUrl,
      ttl: loaded.config.consoleauth.token_ttl,
    });
    const minutes = Math.round(loaded.config.consoleauth.token_ttl / 60);
    process.stdout.write(`\nPorthole is running. Open the demo console (valid for ${minutes} minutes):\n\n  ${url}\n\n`);
    process.stdout.write(await demoSerialLine(loaded, started));
    process.stdout.write(`A new URL: npx porthole token create --instance-uuid ${DEMO_SERVER_ID}\n\n`);
  } else process.stdout.write(await demoSerialLine(loaded, started));
  if (started.api) {
    const host = started.api.host === '0.0.0.0' ? '127.0.0.1' : started.api.host;
    process.stdout.write(`Compute API: ${started.api.tls ? 'https' : 'http'}://${host}:${started.api.port}/v2.1 ([api] auth_strategy = ${loaded.config.api.auth_strategy})\n\n`);
  }
}
