/**
 * @module test/support/qemu-serial
 * A real QEMU (Debian `qemu-system-x86`, `-machine none`: no disk, no CPU, software only) whose
 * human monitor is on a TCP chardev on loopback, as libvirt puts a guest's serial port:
 * `-chardev socket,host=127.0.0.1,port=P,server=on,wait=off -mon chardev=c0,mode=readline`.
 * Each client that connects gets QEMU's banner and the `(qemu) ` prompt, and the chardev takes
 * one client at a time, as a serial port does: so the readiness probe connects and leaves
 * before the test does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { QEMU } from './qemu.ts';
import { freePort } from './xvnc.ts';

export interface SerialQemu {
  /** The chardev's TCP port on 127.0.0.1. */
  readonly port: number;
  /** QEMU's version as its monitor says it (`7.2.x`), read once at start through the chardev. */
  readonly version: string;
  stop(): Promise<void>;
}

export async function startSerialQemu(): Promise<SerialQemu> {
  const port = await freePort();
  const args = ['-nodefaults', '-machine', 'none', '-display', 'none', '-name', 'porthole-serial-test',
    '-chardev', `socket,id=c0,host=127.0.0.1,port=${port},server=on,wait=off`, '-mon', 'chardev=c0,mode=readline'];
  const proc: ChildProcess = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`QEMU exited (${proc.exitCode}): ${stderr.slice(-800)}`);
      const version = await askVersion(port).catch(() => undefined);
      if (version) return { port, version, stop };
      if (Date.now() > deadline) throw new Error(`QEMU's monitor chardev did not answer: ${stderr.slice(-800)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * QEMU's answer to `info version` as the chardev carries it: readline redraws the line as each
 * character arrives (`\x1b[K` erases to its end), then the version line and the next prompt.
 */
export const VERSION_ANSWER = /info version(?:\x1b\[K)?\r\n(\d+\.\d+\.\d+[^\r\n]*)\r\n\(qemu\) /;

/** Connects to the chardev, runs `info version`, returns the version line, disconnects. */
function askVersion(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let text = '';
    let sent = false;
    const timer = setTimeout(() => finish(new Error('no answer')), 5000);
    const finish = (err: Error | null, v?: string) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(v!);
    };
    s.on('error', (err) => finish(err));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!sent && text.includes('(qemu) ')) {
        sent = true;
        s.write('info version\r\n');
      }
      const m = VERSION_ANSWER.exec(text);
      if (m) finish(null, m[1]!.trim());
    });
  });
}
