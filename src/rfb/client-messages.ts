/**
 * @module rfb/client-messages
 * Frames the client-to-server RFB messages after ServerInit (RFC 6143 §7.5 and the community
 * extensions of rfbproto: QEMU, gii, fences, continuous updates, SetDesktopSize, xvp), so that
 * the clipboard policy can leave out ClientCutText (§7.5.6, also in the Extended Clipboard form
 * whose length is negative) and rewrite SetEncodings to what the server side can be framed with.
 * Every other message goes on byte for byte. A message type it does not know ends the session:
 * its length is unknown, and guessing would let the following bytes through unchecked.
 */
import { MessageStream, unframeable } from './message-stream.ts';

/** SetEncodings longer than this is no real client's (noVNC sends about 30). */
export const MAX_ENCODINGS = 1024;
/** Cut text longer than this is refused (it goes by unbuffered; the bound keeps it a clipboard). */
export const MAX_CUT_TEXT = 64 * 1024 * 1024;
/** ClientFence's payload (rfbproto: at most 64 bytes). */
const MAX_FENCE = 64;

export interface ClientMessagePolicy {
  /** ClientCutText is left out (the clipboard may not go to the VM). */
  readonly dropCutText: boolean;
  /** The encodings of a SetEncodings that go on, in the client's order. */
  readonly encodings: (requested: readonly number[]) => number[];
  /** Told of each SetPixelFormat's 16-byte PIXEL_FORMAT, which the server's updates use from then on. */
  readonly onPixelFormat?: (format: Buffer) => void;
}

/** The framer's steps, named after the message part each one reads. */
const Step = {
  MessageType: 0,
  SetPixelFormat: 1,
  SetEncodingsHead: 2,
  SetEncodingsList: 3,
  ClientCutTextHead: 4,
  ClientFenceHead: 5,
  SetDesktopSizeHead: 6,
  GiiHead: 7,
  QemuSubtype: 8,
  QemuAudioOperation: 9,
  MessageEnd: 10,
} as const;

export class ClientMessages extends MessageStream {
  private encodingCount = 0;

  constructor(private readonly policy: ClientMessagePolicy) {
    super(4 * MAX_ENCODINGS, Step.MessageType);
  }

  protected step(state: number): void {
    const h = this.head;
    switch (state) {
      case Step.MessageType: return this.messageType(h[0]!);
      case Step.SetPixelFormat:
        this.policy.onPixelFormat?.(Buffer.from(h.subarray(3, 19)));
        return this.done();
      case Step.SetEncodingsHead: {
        const n = h.readUInt16BE(1);
        if (n > MAX_ENCODINGS) throw unframeable('client', `SetEncodings with ${n} encodings (at most ${MAX_ENCODINGS})`);
        this.encodingCount = n;
        return this.read(4 * n, Step.SetEncodingsList);
      }
      case Step.SetEncodingsList: {
        const requested: number[] = [];
        for (let i = 0; i < this.encodingCount; i++) requested.push(h.readInt32BE(4 * i));
        const kept = this.policy.encodings(requested);
        const out = Buffer.alloc(4 + 4 * kept.length);
        out[0] = 2;
        out.writeUInt16BE(kept.length, 2);
        kept.forEach((e, i) => out.writeInt32BE(e, 4 + 4 * i));
        this.replaceWith(out);
        return this.done();
      }
      case Step.ClientCutTextHead: {
        // the Extended Clipboard pseudo-encoding's messages carry a negative length: its absolute value
        const length = Math.abs(h.readInt32BE(3));
        if (length > MAX_CUT_TEXT) throw unframeable('client', `ClientCutText of ${length} bytes (at most ${MAX_CUT_TEXT})`);
        return this.skip(length, Step.MessageEnd);
      }
      case Step.ClientFenceHead: {
        const length = h[7]!;
        if (length > MAX_FENCE) throw unframeable('client', `ClientFence payload of ${length} bytes (at most ${MAX_FENCE})`);
        return this.skip(length, Step.MessageEnd);
      }
      case Step.SetDesktopSizeHead: return this.skip(16 * h[5]!, Step.MessageEnd);
      case Step.GiiHead: {
        // bit 7 of the endian-and-sub-type byte: big endian
        const length = h[0]! & 0x80 ? h.readUInt16BE(1) : h.readUInt16LE(1);
        return this.skip(length, Step.MessageEnd);
      }
      case Step.QemuSubtype: {
        const sub = h[0]!;
        if (sub === 0) return this.skip(10, Step.MessageEnd); // extended key event: 12 bytes in all
        if (sub === 1) return this.read(2, Step.QemuAudioOperation);
        throw unframeable('client', `QEMU client message subtype ${sub}`);
      }
      case Step.QemuAudioOperation: {
        const op = h.readUInt16BE(0);
        if (op === 0 || op === 1) return this.done(); // enable, disable
        if (op === 2) return this.skip(6, Step.MessageEnd); // set format: u8 format, u8 channels, u32 frequency
        throw unframeable('client', `QEMU audio operation ${op}`);
      }
      case Step.MessageEnd: return this.done();
    }
  }

  private messageType(type: number): void {
    switch (type) {
      case 0: return this.read(19, Step.SetPixelFormat);
      case 2:
        this.leaveOut();
        return this.read(3, Step.SetEncodingsHead);
      case 3: return this.skip(9, Step.MessageEnd); // FramebufferUpdateRequest
      case 4: return this.skip(7, Step.MessageEnd); // KeyEvent
      case 5: return this.skip(5, Step.MessageEnd); // PointerEvent
      case 6:
        if (this.policy.dropCutText) this.leaveOut();
        return this.read(7, Step.ClientCutTextHead);
      case 150: return this.skip(9, Step.MessageEnd); // EnableContinuousUpdates
      case 248: return this.read(8, Step.ClientFenceHead);
      case 250: return this.skip(3, Step.MessageEnd); // xvp
      case 251: return this.read(7, Step.SetDesktopSizeHead);
      case 253: return this.read(3, Step.GiiHead);
      case 255: return this.read(1, Step.QemuSubtype);
      default: throw unframeable('client', `unknown message type ${type}`);
    }
  }

  private done(): void {
    this.endMessage();
    this.read(1, Step.MessageType);
  }
}
