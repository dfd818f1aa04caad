/**
 * @module test/support/xvnc
 * Starts a real TigerVNC `Xvnc` on loopback for a test, with its root window painted a known
 * colour, and stops it. `xinput test-xi2 --root` watches its keyboard, so a test can see that
 * keys typed in the browser reached the X server. Options give it a VNC password (`-rfbauth`)
 * or an X509 certificate for VeNCrypt; by default it offers security type None.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Xvnc {
  readonly display: string;
  readonly port: number;
  /** Raw key presses seen by the X server (X keycodes), once `watchKeys()` was called. */
  readonly keycodes: number[];
  watchKeys(): Promise<void>;
  stop(): Promise<void>;
}

export const XVNC = '/usr/bin/Xvnc';
export const haveXvnc = existsSync(XVNC);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function freeDisplay(): number {
  for (let n = 40 + Math.floor(Math.random() * 400); ; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  }
}

export interface XvncOptions {
  colour: string;
  /** `-SecurityTypes`; default None. */
  securityTypes?: string;
  extraArgs?: string[];
  geometry?: string;
  /** VNC password: written with `vncpasswd -f` (tigervnc-tools) to a file given as `-rfbauth`. */
  password?: string;
  /** Server certificate and key for the X509 security types (`-X509Cert`, `-X509Key`). */
  x509?: { cert: string; key: string };
}

export async function startXvnc(opts: XvncOptions): Promise<Xvnc> {
  const port = await freePort();
  const n = freeDisplay();
  const display = `:${n}`;
  const extra = [...(opts.extraArgs ?? [])];
  let passwordDir: string | undefined;
  if (opts.password !== undefined) {
    passwordDir = mkdtempSync(join(tmpdir(), 'porthole-xvnc-'));
    const file = join(passwordDir, 'passwd');
    const made = spawnSync('vncpasswd', ['-f'], { input: `${opts.password}\n${opts.password}\n` });
    if (made.status !== 0) throw new Error(`vncpasswd -f failed: ${made.stderr?.toString()}`);
    writeFileSync(file, made.stdout, { mode: 0o600 });
    extra.push('-rfbauth', file);
  }
  if (opts.x509) extra.push('-X509Cert', opts.x509.cert, '-X509Key', opts.x509.key);
  const proc = spawn(XVNC, [display, '-rfbport', String(port), '-localhost', '-nolisten', 'tcp', '-SecurityTypes', opts.securityTypes ?? 'None', '-geometry', opts.geometry ?? '640x480', '-depth', '24', '-AlwaysShared', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const children: ChildProcess[] = [proc];
  const deadline = Date.now() + 10_000;
  while (!/Listening for VNC connections/.test(stderr)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`Xvnc did not start: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const env = { ...process.env, DISPLAY: display };
  const paint = spawnSync('xsetroot', ['-solid', opts.colour], { env, encoding: 'utf8' });
  if (paint.status !== 0) throw new Error(`xsetroot failed: ${paint.stderr}`);
  const keycodes: number[] = [];
  return {
    display,
    port,
    keycodes,
    async watchKeys() {
      const watcher = spawn('xinput', ['test-xi2', '--root'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(watcher);
      let buf = '';
      let inPress = false;
      watcher.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          if (/^EVENT type \d+ \(RawKeyPress\)/.test(line)) inPress = true;
          else if (/^EVENT type/.test(line)) inPress = false;
          const m = /^\s+detail: (\d+)/.exec(line);
          if (m && inPress) keycodes.push(Number(m[1]));
        }
      });
      await new Promise((r) => setTimeout(r, 300));
    },
    async stop() {
      for (const c of children.reverse()) {
        if (c.exitCode === null) {
          const exited = new Promise((r) => c.once('exit', r));
          c.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
          if (c.exitCode === null) c.kill('SIGKILL');
        }
      }
      if (passwordDir) rmSync(passwordDir, { recursive: true, force: true });
    },
  };
}

/** X keycode of a keysym on this display (for checking what arrived). */
export function keycodeOf(display: string, keysymName: string): number | undefined {
  const r = spawnSync('xmodmap', ['-pke'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
  for (const line of r.stdout.split('\n')) {
    const m = /^keycode\s+(\d+) = (\S+)/.exec(line);
    if (m && m[2] === keysymName) return Number(m[1]);
  }
  return undefined;
}

/**
 * `xev` on the root window of `display`: the keys the X server saw, `+Name` for a press and
 * `-Name` for a release, from a `mark` on. Kill `xev` when done.
 */
export function readRootKeys(display: string): { xev: ChildProcess; mark: () => number; since: (mark: number) => string[] } {
  const xev = spawn('xev', ['-root', '-event', 'keyboard'], { env: { ...process.env, DISPLAY: display }, stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  xev.stdout!.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const since = (mark: number) => [...out.slice(mark).matchAll(/Key(Press|Release) event[^]*?keycode \d+ \(keysym 0x[0-9a-f]+, (\w+)\)/g)]
    .map((m) => `${m[1] === 'Press' ? '+' : '-'}${m[2]}`);
  return { xev, mark: () => out.length, since };
}
