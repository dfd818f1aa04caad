/**
 * @module demo/serial-shell
 * One client of the demo serial console: a tiny line-oriented shell on a TCP socket, as a serial
 * getty with echo on would look through a terminal. It echoes what is typed (the port echoes, as a
 * tty in cooked mode does, so xterm.js and `nc` both show the typing), takes CR, LF or CR LF as
 * Enter, erases with Backspace or DEL, drops ANSI escape sequences (arrow keys) and answers
 * `help`, `date`, `uptime`, `echo ...` and `exit`; anything else is "unknown command". A line
 * is at most `maxLineLength` characters: further characters ring the bell and are not kept.
 *
 * The shell owns its socket from the moment it is given one: it closes it on every path (exit,
 * peer gone, error, `destroy()` by the console) and tells its host once. A client that does not
 * read what it is sent stops being read until the socket drains, so echo cannot pile up.
 */
import type net from 'node:net';
import { StringDecoder } from 'node:string_decoder';

const PROMPT = 'demo$ ';
const ESC = '\x1b';
/** The terminal's erase of the character left of the cursor. */
const RUB_OUT = '\b \b';

/** Where an ANSI escape sequence being dropped is (ECMA-48 §5.4: CSI, then final byte 0x40-0x7e). */
type EscapeState = 'Text' | 'Escape' | 'ControlSequence';

/** What a shell needs from the console that accepted it. */
export interface DemoSerialShellHost {
  readonly name: string;
  readonly maxLineLength: number;
  /** The console's clock (tests pass a fixed one). */
  now(): Date;
  /** Seconds since the console started. */
  uptimeSeconds(): number;
  /** Clients connected right now, this one included. */
  clientCount(): number;
  /** The socket is closed; the host forgets this shell. */
  onShellClosed(shell: DemoSerialShell): void;
}

export class DemoSerialShell {
  private readonly decoder = new StringDecoder('utf8');
  /** The line being typed, one code point per element (Backspace erases a whole character). */
  private line: string[] = [];
  private escape: EscapeState = 'Text';
  /** The last character was CR: an LF right after it ends no second line (CR LF is one Enter). */
  private afterCr = false;
  private closed = false;
  /** `exit` was typed: the rest of the chunk is not read, the socket ends after the answer. */
  private exiting = false;

  constructor(private readonly host: DemoSerialShellHost, private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // a client that does not read pauses our reading of it: echo is bounded by the socket's buffer
    socket.on('drain', () => socket.resume());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      host.onShellClosed(this);
    });
    this.write(`\r\n${host.name} serial console, ${host.now().toISOString()}\r\nType help for the commands.\r\n\r\n${PROMPT}`);
  }

  /** Drops the client at once (the console is closing). */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let out = '';
    for (const ch of this.decoder.write(chunk)) {
      out += this.onCharacter(ch);
      if (this.exiting) break;
    }
    this.write(out);
    if (!this.exiting) return;
    this.closed = true;
    this.socket.end();
    // end() waits for the client's FIN; a client that never sends one must not hold the socket
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Takes one typed character; returns what the terminal should be sent for it. */
  private onCharacter(ch: string): string {
    const wasCr = this.afterCr;
    this.afterCr = ch === '\r';
    if (this.escape === 'Escape') {
      this.escape = ch === '[' ? 'ControlSequence' : 'Text';
      return '';
    }
    if (this.escape === 'ControlSequence') {
      const code = ch.codePointAt(0)!;
      if (code >= 0x40 && code <= 0x7e) this.escape = 'Text';
      return '';
    }
    switch (ch) {
      case '\n':
        return wasCr ? '' : this.onEnter();
      case '\r':
        return this.onEnter();
      case '\x7f':
      case '\b':
        return this.line.pop() === undefined ? '' : RUB_OUT;
      case '\x03': // Ctrl-C: the line is abandoned, as a shell does
        this.line = [];
        return `^C\r\n${PROMPT}`;
      case '\x15': // Ctrl-U: erase the line
        return RUB_OUT.repeat(this.line.splice(0).length);
      case ESC:
        this.escape = 'Escape';
        return '';
    }
    // other control characters have no meaning here; echoing them would move the cursor
    if (ch < ' ') return '';
    if (this.line.length >= this.host.maxLineLength) return '\x07';
    this.line.push(ch);
    return ch;
  }

  private onEnter(): string {
    const line = this.line.join('').trim();
    this.line = [];
    const answer = this.answer(line);
    if (answer === null) {
      this.exiting = true;
      return '\r\nlogout\r\n';
    }
    return `\r\n${answer === '' ? '' : `${answer.replaceAll('\n', '\r\n')}\r\n`}${PROMPT}`;
  }

  /** The output of one command line; null: end the session. */
  private answer(line: string): string | null {
    if (line === '') return '';
    const [command = '', ...args] = line.split(/\s+/);
    switch (command) {
      case 'help':
        return [
          'help     this list',
          'date     the date and time (UTC)',
          'uptime   how long this console has run, and its clients',
          'echo ..  prints its words',
          'exit     closes this connection',
        ].join('\n');
      case 'date':
        return this.host.now().toUTCString();
      case 'uptime':
        return `up ${duration(this.host.uptimeSeconds())}, ${plural(this.host.clientCount(), 'client')}`;
      case 'echo':
        return args.join(' ');
      case 'exit':
      case 'logout':
        return null;
      default:
        return `${command}: unknown command (try help)`;
    }
  }

  private write(text: string): void {
    if (text === '' || this.socket.destroyed) return;
    if (!this.socket.write(text)) this.socket.pause();
  }
}

/** `3 days, 04:05:06` or `04:05:06`, as uptime(1) reads. */
function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86_400);
  const clock = [Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return days > 0 ? `${plural(days, 'day')}, ${clock}` : clock;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
