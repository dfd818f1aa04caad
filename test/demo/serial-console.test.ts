/**
 * @module test/demo/serial-console
 * The demo serial console over real sockets: the banner, echo and line editing, the commands, the
 * line cap, several clients at once and the cap on them, `exit`, and `close()` dropping every
 * client. Then the same console as the demo server's serial endpoint in a gateway started with
 * `[porthole] demo`, through Porthole's serial WebSocket with a token minted as the API mints it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { mintConsoleToken } from '../../src/consoles/mint.ts';
import { serial } from '../../src/consoles/serial.ts';
import { startDemoSerialConsole, type DemoSerialConsole } from '../../src/demo/serial-console.ts';
import { DEMO_SERVER_ID } from '../../src/gateway.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';

const FIXED_NOW = new Date('2024-05-06T07:08:09.000Z');

/** A TCP client that keeps everything it was sent. */
interface Client {
  readonly socket: net.Socket;
  /** All output so far, as text. */
  text(): string;
  /** Waits until the output (after `from` characters) matches; returns that part of it. */
  until(pattern: RegExp, from?: number): Promise<string>;
  closed: Promise<void>;
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  let out = '';
  socket.on('data', (d: Buffer) => (out += d.toString('utf8')));
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => {});
  await once(socket, 'connect');
  return {
    socket,
    text: () => out,
    until: (pattern, from = 0) => eventually(`output matching ${pattern} in ${JSON.stringify(out.slice(from))}`, () => pattern.test(out.slice(from)) && out.slice(from)),
    closed,
  };
}

/** Types `line` and Enter (CR, as a terminal sends it); resolves with the answer up to the next prompt. */
async function command(c: Client, line: string, enter = '\r'): Promise<string> {
  const from = c.text().length;
  c.socket.write(line + enter);
  const out = await c.until(/\r\ndemo\$ $/, from);
  return out.slice(0, -'\r\ndemo$ '.length);
}

describe('demo serial console', () => {
  let server: DemoSerialConsole;
  const clients: Client[] = [];
  before(async () => {
    server = await startDemoSerialConsole({ now: () => FIXED_NOW, maxLineLength: 24, maxClients: 3 });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    // the next test starts with no client counted (the cap, uptime's count)
    await eventually('no client left', () => server.clientCount() === 0);
  });
  after(() => server.close());

  async function client(): Promise<Client> {
    const c = await connect(server.port);
    clients.push(c);
    await c.until(/demo\$ $/);
    return c;
  }

  it('greets with its name and the time, then the prompt', async () => {
    const c = await client();
    assert.equal(c.text(), '\r\nPorthole demo serial console, 2024-05-06T07:08:09.000Z\r\nType help for the commands.\r\n\r\ndemo$ ');
  });

  it('echoes what is typed and answers echo, date, help and uptime', async () => {
    const c = await client();
    assert.equal(await command(c, 'echo hello   world'), 'echo hello   world\r\nhello world');
    assert.equal(await command(c, 'date'), 'date\r\nMon, 06 May 2024 07:08:09 GMT');
    assert.match(await command(c, 'help'), /^help\r\nhelp {5}this list\r\n.*\r\necho \.\. {2}prints its words\r\nexit /s);
    assert.match(await command(c, 'uptime'), /^uptime\r\nup 00:00:\d\d, 1 client$/);
  });

  it('says unknown command for anything else, and gives a new prompt for an empty line', async () => {
    const c = await client();
    assert.equal(await command(c, 'reboot now'), 'reboot now\r\nreboot: unknown command (try help)');
    assert.equal(await command(c, ''), '');
    assert.equal(await command(c, '   '), '   ');
  });

  it('takes LF and CR LF as one Enter each', async () => {
    const c = await client();
    assert.equal(await command(c, 'echo a', '\n'), 'echo a\r\na');
    const from = c.text().length;
    c.socket.write('echo b\r\necho c\r\n');
    await c.until(/c\r\ndemo\$ $/, from);
    assert.equal(c.text().slice(from), 'echo b\r\nb\r\ndemo$ echo c\r\nc\r\ndemo$ ');
  });

  it('erases with Backspace and DEL, drops arrow keys, abandons the line on Ctrl-C', async () => {
    const c = await client();
    assert.equal(await command(c, 'echo abx\x7fc\bd'), 'echo abx\b \bc\b \bd\r\nabd');
    // an erase on an empty line sends nothing
    assert.equal(await command(c, '\x7f\x7fecho up\x1b[A\x1b[1;5Cok'), 'echo upok\r\nupok');
    const from = c.text().length;
    c.socket.write('echo lost\x03');
    await c.until(/\^C\r\ndemo\$ $/, from);
    assert.equal(await command(c, 'echo kept'), 'echo kept\r\nkept');
  });

  it('rings the bell for characters beyond the line cap and does not keep them', async () => {
    const c = await client();
    // the cap is 24 characters here: 'echo 0123456789abcdefghi' is 24
    const out = await command(c, 'echo 0123456789abcdefghijklm');
    assert.equal(out, `echo 0123456789abcdefghi${'\x07'.repeat(4)}\r\n0123456789abcdefghi`);
    // characters, not bytes: 24 characters of which 19 take two bytes each fit
    const letters = 'é'.repeat(19);
    assert.equal(await command(c, `echo ${letters}é`), `echo ${letters}\x07\r\n${letters}`);
  });

  it('serves several clients at once, each with its own line, and refuses one beyond its cap', async () => {
    const a = await client();
    const b = await client();
    a.socket.write('echo fro');
    assert.equal(await command(b, 'echo other'), 'echo other\r\nother');
    assert.equal(await command(a, 'm a'), 'm a\r\nfrom a');
    assert.match(await command(b, 'uptime'), /, 2 clients$/);
    await client();
    const fourth = await connect(server.port);
    clients.push(fourth);
    await fourth.closed;
    assert.match(fourth.text(), /Porthole demo serial console: 3 clients are connected already/);
    assert.doesNotMatch(fourth.text(), /demo\$/);
  });

  it('closes the connection on exit', async () => {
    const c = await client();
    c.socket.write('exit\r');
    await c.closed;
    assert.match(c.text(), /exit\r\nlogout\r\n$/);
    await eventually('the console to forget the client', () => server.clientCount() === 0);
  });

  it('drops every client and stops listening on close', async () => {
    const other = await startDemoSerialConsole();
    const a = await connect(other.port);
    const b = await connect(other.port);
    await a.until(/demo\$ $/);
    await b.until(/demo\$ $/);
    await other.close();
    await Promise.all([a.closed, b.closed]);
    const refused = net.connect(other.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
  });
});

describe('the demo serial console through Porthole', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ 'porthole.demo': 'true' });
  });
  after(() => gw?.close());

  it('is the demo server\'s serial endpoint, opened by a serial token on the serial listener', async () => {
    const demo = gw.gateway.demoSerial!;
    const server = await gw.gateway.stores.inventory.get(DEMO_SERVER_ID);
    assert.deepEqual(server?.serial, { host: '127.0.0.1', port: demo.port });
    assert.deepEqual(server?.vnc, { host: '127.0.0.1', port: gw.gateway.demo!.port });
    const listener = gw.gateway.proxies.get(serial.name)!;
    const { url } = await mintConsoleToken(gw.gateway.stores, { kind: serial, instanceUuid: DEMO_SERVER_ID, base: listener.baseUrl, ttl: 60 });
    assert.match(url, new RegExp(`^ws://127\\.0\\.0\\.1:${listener.port}/\\?token=`));

    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
    let out = '';
    ws.on('message', (d: Buffer) => (out += d.toString('utf8')));
    const closed = once(ws, 'close');
    await once(ws, 'open');
    await eventually('the banner and the prompt', () => /Porthole demo serial console, \d{4}-.*demo\$ $/s.test(out), 5000);
    ws.send(Buffer.from('echo through porthole\r'));
    await eventually('the answer', () => out.endsWith('echo through porthole\r\nthrough porthole\r\ndemo$ '), 5000);
    ws.send(Buffer.from('exit\r'));
    // the demo console ends the connection: Porthole closes the WebSocket
    await closed;
  });

  it('is closed with the gateway', async () => {
    const other = await startGateway({ 'porthole.demo': 'true' });
    const c = await connect(other.gateway.demoSerial!.port);
    await c.until(/demo\$ $/);
    await other.close();
    await c.closed;
  });
});
