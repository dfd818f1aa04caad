/**
 * @module rfb/recording/encodings
 * What a recorded session's client may ask the server for: the encodings Porthole's RFB client
 * core decodes (the framer's `FRAMED_ENCODINGS`, the same set), the level pseudo-encodings and
 * Extended Clipboard (cut text, which the decoder passes over). A recording is only worth its
 * bytes if it can be played, so a recorded session's SetEncodings loses the others (noVNC's
 * VMware cursor, for one) before it reaches the server; the client falls back on the ones left,
 * as RFB requires of it (RFC 6143 §7.5.2).
 */
import { ClientMessages } from '../client-messages.ts';
import { EXTENDED_CLIPBOARD } from '../clipboard-policy.ts';
import { FRAMED_ENCODINGS, isLevelPseudoEncoding } from '../server-messages.ts';

export function playableEncodings(requested: readonly number[]): number[] {
  return requested.filter((e) => FRAMED_ENCODINGS.has(e) || isLevelPseudoEncoding(e) || e === EXTENDED_CLIPBOARD);
}

/** A framer of a recorded session's client messages: SetEncodings kept to what can be played, the rest byte for byte. */
export function recordedClientMessages(): ClientMessages {
  return new ClientMessages({ dropCutText: false, encodings: playableEncodings });
}
