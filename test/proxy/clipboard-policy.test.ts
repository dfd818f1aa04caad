/**
 * `[porthole] clipboard` enforced in the proxy, against a real TigerVNC Xvnc: a raw RFB client
 * (not the page, which could be changed in the browser) sends ClientCutText and a KeyEvent, and
 * the X server's clipboard is read with `xclip -o`; the X clipboard is set with `xclip -i` and the
 * client's received bytes are searched for its text, while the client asks for updates in Tight,
 * ZRLE, Hextile, RRE, CopyRect and Raw with the cursor and desktop-size pseudo-encodings, so that
 * the proxy frames a real server's stream. Each policy: both, to-vm, from-vm, off.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { RfbClient } from '../support/rfb-client.ts';
import { haveXvnc, keycodeOf, startXvnc, type Xvnc } from '../support/xvnc.ts';

const haveXclip = existsSync('/usr/bin/xclip');
const ENCODINGS = [7, 16, 5, 2, 1, 0, -223, -308, -224, -239, -313, -312, -258, -307, -26, -250, 50];

interface Session {
  readonly client: RfbClient;
  readonly ws: WebSocket;
  /** Every byte received after ServerInit. */
  readonly received: () => Buffer;
  readonly closed: () => string | undefined;
}

describe('[porthole] clipboard enforced in the proxy (TigerVNC Xvnc, raw RFB client)', { skip: !haveXvnc || !haveXclip ? 'needs Xvnc and xclip' : false }, () => {
  let xvnc: Xvnc;
  const owners: ChildProcess[] = [];

  before(async () => {
    xvnc = await startXvnc({ colour: '#336699', geometry: '320x240' });
    await xvnc.watchKeys();
  });
  after(async () => {
    for (const o of owners) if (o.exitCode === null) o.kill('SIGTERM');
    await xvnc?.stop();
  });

  const env = () => ({ ...process.env, DISPLAY: xvnc.display });
  const readXClipboard = () => spawnSync('xclip', ['-o', '-selection', 'clipboard'], { env: env(), encoding: 'utf8', timeout: 5000 }).stdout;
  /** `xclip -i -quiet` stays in the foreground, owning the selection until another client takes it. */
  function setXClipboard(text: string): void {
    const owner = spawn('xclip', ['-i', '-quiet', '-selection', 'clipboard'], { env: env(), stdio: ['pipe', 'ignore', 'ignore'] });
    owner.stdin!.end(text);
    owners.push(owner);
  }

  async function open(gw: TestGateway): Promise<Session> {
    const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/?token=${token}`, ['binary'], { perMessageDeflate: false });
    const client = RfbClient.overWebSocket(ws);
    let closedWith: string | undefined;
    ws.on('close', (code, reason) => (closedWith = `${code} ${reason.toString()}`));
    await client.handshake();
    const chunks: Buffer[] = [];
    ws.on('message', (d: Buffer) => chunks.push(d));
    client.send(Buffer.concat([Buffer.from([2, 0, 0, ENCODINGS.length]), ...ENCODINGS.map((e) => { const b = Buffer.alloc(4); b.writeInt32BE(e); return b; })]));
    client.updateRequest(false);
    return { client, ws, received: () => Buffer.concat(chunks), closed: () => closedWith };
  }

  function cutText(text: string): Buffer {
    const t = Buffer.from(text, 'latin1');
    const head = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(t.length, 4);
    return Buffer.concat([head, t]);
  }

  /** Keeps the client asking for updates while `fn` runs, so the server's stream carries pictures too. */
  async function withUpdates<T>(s: Session, fn: () => Promise<T>): Promise<T> {
    const timer = setInterval(() => s.client.updateRequest(true), 50);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
    }
  }

  for (const policy of ['both', 'to-vm', 'from-vm', 'off'] as const) {
    const toVm = policy === 'both' || policy === 'to-vm';
    const fromVm = policy === 'both' || policy === 'from-vm';
    it(`${policy}: the browser's clipboard ${toVm ? 'reaches' : 'never reaches'} the X clipboard, the X clipboard ${fromVm ? 'reaches' : 'never reaches'} the client, typing works`, async () => {
      const gw = await startGateway({ 'porthole.clipboard': policy });
      try {
        const s = await open(gw);
        await withUpdates(s, async () => {
          // to the VM: a ClientCutText then a key; the key arriving shows the stream went on past the cut text
          const sent = `porthole-to-vm-${randomBytes(6).toString('hex')}`;
          const keycode = keycodeOf(xvnc.display, 'q')!;
          const before = xvnc.keycodes.length;
          s.client.send(cutText(sent));
          s.client.key(0x71);
          await eventually('the key typed after the cut text reaches the X server', () => xvnc.keycodes.slice(before).includes(keycode));
          if (toVm) await eventually('the X clipboard holds the text sent', () => readXClipboard() === sent);
          else assert.notEqual(readXClipboard(), sent);

          // from the VM: the X clipboard set by another X client, the text searched for in every byte the client got
          const text = `porthole-from-vm-${randomBytes(6).toString('hex')}`;
          const mark = s.received().length;
          setXClipboard(text);
          if (fromVm) {
            await eventually('the client receives the X clipboard', () => s.received().includes(text));
          } else {
            // the stream goes on (updates for a repainted root) and the text is never in it
            spawnSync('xsetroot', ['-solid', `#${randomBytes(3).toString('hex')}`], { env: env() }); // a colour it does not have yet
            await eventually('updates keep coming after the clipboard changed', () => s.received().length > mark);
            await new Promise((r) => setTimeout(r, 500));
            assert.equal(s.received().includes(text), false, 'the X clipboard reached the client');
          }
          assert.equal(s.closed(), undefined, 'the session is still open');
        });
        s.client.close();
      } finally {
        await gw.close();
      }
    });
  }

  it('from-vm: a ClientCutText pipelined with ClientInit, before the relay starts, is left out too', async () => {
    const gw = await startGateway({ 'porthole.clipboard': 'from-vm' });
    try {
      const { token } = await gw.mint({ host: '127.0.0.1', port: xvnc.port });
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/?token=${token}`, ['binary'], { perMessageDeflate: false });
      const client = RfbClient.overWebSocket(ws);
      await client.readVersion();
      client.send(Buffer.from('RFB 003.008\n', 'latin1'));
      await client.read(2, 'security types');
      client.send([1]);
      assert.equal((await client.read(4, 'SecurityResult')).readUInt32BE(0), 0);
      const sent = `porthole-early-${randomBytes(6).toString('hex')}`;
      const keycode = keycodeOf(xvnc.display, 'w')!;
      const before = xvnc.keycodes.length;
      // ClientInit, then at once (one WebSocket message) a cut text and a key
      client.send(Buffer.concat([Buffer.from([1]), cutText(sent), Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x77])]));
      await client.read(24, 'ServerInit');
      await eventually('the pipelined key reaches the X server', () => xvnc.keycodes.slice(before).includes(keycode));
      assert.notEqual(readXClipboard(), sent);
      client.close();
    } finally {
      await gw.close();
    }
  });

  it('off: a client message type the proxy cannot frame closes the session with a reason, before it reaches the server', async () => {
    const gw = await startGateway({ 'porthole.clipboard': 'off' });
    try {
      const s = await open(gw);
      s.client.send(Buffer.from([99, 6, 0, 0, 0, 0, 0, 0, 4, 0x61, 0x62, 0x63, 0x64]));
      assert.match(await s.client.waitForClose(), /^WebSocket closed 1002 the console client sent a message the proxy cannot check$/);
      const line = await eventually('the session line', () => gw.logs.find((l) => l.msg === 'console session ended'));
      assert.match(String(line.reason), /cannot be checked for the clipboard policy: unknown message type 99/);
    } finally {
      await gw.close();
    }
  });
});
