/**
 * @module test/support/qemu-spice
 * A real QEMU (Debian `qemu-system-x86`, software emulation) whose guest paints its screen one
 * known colour, shown on QEMU's SPICE server on loopback (`-spice port=P,addr=127.0.0.1,
 * disable-ticketing=on`, QXL display). The guest is a 512-byte boot sector on a floppy image the
 * helper writes: it switches to VGA mode 13h (320x200, 256 colours), fills the frame buffer at
 * 0xA000:0 with one palette index and halts. The colour the SPICE client should show is the one
 * QEMU's own `screendump` gives, so a test compares with QEMU, not with a guess at its palette.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hmp, QEMU } from './qemu.ts';
import { freePort } from './xvnc.ts';

export { haveQemu } from './qemu.ts';

export interface SpiceQemu {
  /** The SPICE server's plain port on 127.0.0.1. */
  readonly port: number;
  /** The pixel at (x, y) of QEMU's own screendump (PPM), once the guest has painted. */
  screenPixel(x: number, y: number): Promise<[number, number, number]>;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * x86 real mode: `mov ax,0x13; int 0x10; push 0xA000; pop es; xor di,di; mov al,COLOUR;
 * mov cx,64000; rep stosb; hlt; jmp hlt`, then the boot signature 0x55AA at bytes 510-511.
 */
export function bootSector(colour: number): Buffer {
  const code = [0xb8, 0x13, 0x00, 0xcd, 0x10, 0x68, 0x00, 0xa0, 0x07, 0x31, 0xff, 0xb0, colour & 0xff, 0xb9, 0x00, 0xfa, 0xf3, 0xaa, 0xf4, 0xeb, 0xfd];
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export async function startSpiceQemu(opts: { colour: number }): Promise<SpiceQemu> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-qemu-spice-'));
  const image = join(dir, 'boot.img');
  // a 1.44 MB floppy: SeaBIOS boots its first sector
  const floppy = Buffer.alloc(1474560);
  bootSector(opts.colour).copy(floppy);
  writeFileSync(image, floppy);
  const monitorPath = join(dir, 'monitor.sock');
  const port = await freePort();
  const args = [
    '-nodefaults', '-accel', 'tcg', '-m', '32', '-display', 'none', '-name', 'porthole-spice-test',
    '-vga', 'qxl', '-spice', `port=${port},addr=127.0.0.1,disable-ticketing=on`,
    '-drive', `file=${image},format=raw,if=floppy`,
    '-monitor', `unix:${monitorPath},server=on,wait=off`,
  ];
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
  const dump = join(dir, 'screen.ppm');
  const screenPixel = async (x: number, y: number): Promise<[number, number, number]> => {
    await monitor(`screendump ${dump}`);
    const ppm = readFileSync(dump);
    // P6\n<width> <height>\n255\n then RGB triplets
    const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(ppm.subarray(0, 32).toString('latin1'));
    if (!m) throw new Error('QEMU screendump is not a P6 PPM');
    const at = m[0].length + (y * Number(m[1]) + x) * 3;
    return [ppm[at]!, ppm[at + 1]!, ppm[at + 2]!];
  };
  try {
    const deadline = Date.now() + 15_000;
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
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, screenPixel, pid: proc.pid!, stop };
}
