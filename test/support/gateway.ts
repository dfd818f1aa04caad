/**
 * @module test/support/gateway
 * Starts a real Porthole gateway for a test: loopback only, free ports (the noVNC proxy's and
 * the API's), a fresh SQLite file in a temporary directory, and a logger whose lines the test
 * can read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig, type LoadedConfig, type RawSetting } from '../../src/config/load.ts';
import { createGateway, type Gateway, type GatewayParts } from '../../src/gateway.ts';
import { accessUrl } from '../../src/consoles/console-url.ts';

export interface LogLine {
  level: number;
  event?: string;
  code?: string;
  msg: string;
  [key: string]: unknown;
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly loaded: LoadedConfig;
  readonly port: number;
  readonly origin: string;
  readonly dir: string;
  readonly dbPath: string;
  readonly logs: LogLine[];
  /** Every raw log line as written, to check that no token ever appears. */
  readonly rawLog: string[];
  mint(spec: { host: string; port: number; instanceUuid?: string; ttl?: number; internalAccessPath?: string }): Promise<{ token: string; url: string }>;
  close(): Promise<void>;
}

export function tempDir(prefix = 'porthole-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function flags(settings: Record<string, string>): RawSetting[] {
  return Object.entries(settings).map(([key, raw]) => {
    const [section, name] = key.split('.') as [string, string];
    return { section, name, raw, source: `test ${key}` };
  });
}

export async function startGateway(settings: Record<string, string> = {}, parts: Omit<GatewayParts, 'log'> = {}): Promise<TestGateway> {
  const dir = tempDir();
  const dbPath = join(dir, 'porthole.db');
  const loaded = loadConfig({
    flags: flags({
      'vnc.novncproxy_host': '127.0.0.1',
      'vnc.novncproxy_port': '0',
      // serve runs the serial and SPICE listeners too: loopback and free ports, never Nova's
      'serial_console.serialproxy_host': '127.0.0.1',
      'serial_console.serialproxy_port': '0',
      'spice.html5proxy_host': '127.0.0.1',
      'spice.html5proxy_port': '0',
      // the API listener is on by default ([porthole] api_enabled): loopback and a free port
      // too, never 0.0.0.0:8774, which a running Porthole or another test may hold
      'DEFAULT.osapi_compute_listen': '127.0.0.1',
      'DEFAULT.osapi_compute_listen_port': '0',
      'database.connection': `sqlite:///${dbPath}`,
      'DEFAULT.web': join(dir, 'no-web-dir'),
      'DEFAULT.cert': join(dir, 'no-cert.pem'),
      ...settings,
    }),
  });
  const logs: LogLine[] = [];
  const rawLog: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString();
      rawLog.push(text);
      for (const line of text.split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const gateway = await createGateway(loaded, { ...parts, log });
  const port = gateway.novnc!.port;
  return {
    gateway,
    loaded,
    port,
    origin: `http://127.0.0.1:${port}`,
    dir,
    dbPath,
    logs,
    rawLog,
    async mint(spec) {
      const { token } = await gateway.stores.tokens.create({
        consoleType: 'novnc',
        host: spec.host,
        port: spec.port,
        instanceUuid: spec.instanceUuid ?? '11111111-2222-4333-8444-555555555555',
        accessUrlBase: gateway.novnc!.baseUrl,
        ttl: spec.ttl ?? 600,
        internalAccessPath: spec.internalAccessPath ?? null,
      });
      return { token, url: accessUrl(gateway.novnc!.baseUrl, 'novnc', token) };
    },
    async close() {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `predicate` holds, polling; fails with `what` after `ms`. */
export async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
