/**
 * @module proxy/serial-viewer
 * One viewer's attachment to a kept serial console (`serial_keep_attached`), in the place of the
 * backend socket a plain relay dials: the console connection adopts it and the relay reads and
 * writes it as it would a socket. What it reads is the kept scrollback, then the live output
 * (pushed by the kept console, `kept-serial.ts`); what it is written goes to the console's one
 * backend connection, or nowhere for a view-only viewer. Destroying it detaches the viewer and
 * never touches the backend connection, which the hub owns.
 *
 * The backend is never paused for a viewer: one slow browser must not hold up the console's log
 * nor the other viewers. A viewer that falls further behind than `maxBuffered` bytes is ended
 * (`SERIAL_VIEWER_TOO_SLOW`); its relay closes it and the page may reconnect.
 */
import { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';

/** What a viewer needs of the console it is attached to. */
export interface ViewerPort {
  /** Writes a viewer's input to the backend; `done` once it is taken (backpressure). */
  input(chunk: Buffer, done: () => void): void;
  detach(viewer: SerialViewer): void;
}

export class SerialViewer extends Duplex {
  constructor(
    private readonly port: ViewerPort,
    readonly viewOnly: boolean,
    private readonly maxBuffered: number,
  ) {
    super({ allowHalfOpen: false });
  }

  /** Output of the console for this viewer; the same buffer goes to every viewer, never changed. */
  deliver(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.readableLength + chunk.length > this.maxBuffered) {
      this.destroy(new GatewayError('SERIAL_VIEWER_TOO_SLOW', `serial viewer more than ${this.maxBuffered} bytes behind the console`, { status: 502, closeCode: 1011, clientMessage: 'The console output came faster than this browser took it' }));
      return;
    }
    this.push(chunk);
  }

  /** The console's backend connection is gone: the viewer's stream ends after what it has. */
  backendEnded(): void {
    if (!this.destroyed) this.push(null);
  }

  override _read(): void {
    // output is pushed as it comes (`deliver`); it is never read on demand
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // a view-only viewer's keys (and its terminal's answers to queries) go nowhere
    if (this.viewOnly) callback();
    else this.port.input(chunk, () => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.port.detach(this);
    callback(error);
  }
}
