/**
 * @module test/support/qemu
 * Starts a real QEMU (Debian `qemu-system-x86`) for a test: no disk, no CPU (`-machine none`,
 * software only), just its VNC server on loopback, which then shows QEMU's placeholder screen
 * (640x480, black with grey text: "Display output is not active."). Options: VeNCrypt with
 * `tls-creds-x509` (`verify-peer=yes` makes QEMU check the client certificate against its CA),
 * and `password=on` with the password set through the QEMU monitor (HMP over a unix socket,
 * `set_password vnc ...`), as libvirt does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const QEMU = '/usr/bin/qemu-system-x86_64';
export const haveQemu = existsSync(QEMU);

export interface Qemu {
  readonly port: number;
  /** Runs one HMP command and returns its output. */
  monitor(command: string): Promise<string>;
  stop(): Promise<void>;
}

export interface QemuOptions {
  /** Directory with ca-cert.pem, server-cert.pem, server-key.pem: VeNCrypt X509. */
  readonly tlsDir?: string;
  /** With `tlsDir`: require and check a client certificate (default true). */
  readonly verifyPeer?: boolean;
  /** VNC password, set through the monitor (`password=on`). */
  readonly password?: string;
  /**
   * A paused PC with a standard VGA (`-machine pc -S -vga std`) instead of `-machine none`: its
   * screen ("Guest has not initialized the display", grey on black) is a console that the
   * monitor's `screendump` can write, which `-machine none`'s placeholder is not. Still no CPU time.
   */
  readonly vga?: boolean;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** QEMU takes a display number (port 5900 + N), not a port. */
async function freeDisplay(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 5000);
    if (await portFree(5900 + n)) return n;
  }
  throw new Error('no free VNC display number');
}

export async function startQemu(opts: QemuOptions = {}): Promise<Qemu> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-qemu-'));
  const monitorPath = join(dir, 'monitor.sock');
  const display = await freeDisplay();
  const vnc = [`127.0.0.1:${display}`];
  const args = ['-nodefaults', ...(opts.vga ? ['-machine', 'pc', '-S', '-vga', 'std'] : ['-machine', 'none']), '-display', 'none', '-name', 'porthole-test', '-monitor', `unix:${monitorPath},server=on,wait=off`];
  if (opts.tlsDir) {
    args.push('-object', `tls-creds-x509,id=tls0,dir=${opts.tlsDir},endpoint=server,verify-peer=${opts.verifyPeer === false ? 'no' : 'yes'}`);
    vnc.push('tls-creds=tls0');
  }
  if (opts.password !== undefined) vnc.push('password=on');
  args.push('-vnc', vnc.join(','));
  const proc: ChildProcess = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const monitor = (command: string) => hmp(monitorPath, command);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`QEMU exited (${proc.exitCode}): ${stderr.slice(-800)}`);
      if (existsSync(monitorPath)) {
        try {
          await monitor('info version');
          break;
        } catch {
          // not accepting yet
        }
      }
      if (Date.now() > deadline) throw new Error(`QEMU did not start: ${stderr.slice(-800)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (opts.password !== undefined) {
      const out = await monitor(`set_password vnc ${opts.password}`);
      if (/error|invalid/i.test(out)) throw new Error(`set_password failed: ${out}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port: 5900 + display, monitor, stop };
}

/** One HMP command over the monitor socket: waits for the prompt, sends, reads up to the next prompt. */
export function hmp(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    let sent = false;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`QEMU monitor did not answer "${command}"`));
    }, 5000);
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!sent && buf.includes('(qemu) ')) {
        sent = true;
        buf = '';
        s.write(`${command}\n`);
      } else if (sent && buf.includes('(qemu) ')) {
        clearTimeout(timer);
        s.destroy();
        // the terminal echo (with its escape sequences) comes first; the answer follows it
        // eslint-disable-next-line no-control-regex
        resolve(buf.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n').slice(1).join('\n').replace('(qemu) ', '').trim());
      }
    });
  });
}
