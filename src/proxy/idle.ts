/**
 * @module proxy/idle
 * What counts as input from the browser for `[porthole] console_idle_timeout`, per console kind,
 * as a test of one WebSocket message (no allocation, no state: it runs on every message of a
 * session whose idle timeout is on, and on none when it is off).
 *
 * - RFB (noVNC): a noVNC client keeps sending messages that nobody typed: FramebufferUpdateRequest
 *   (type 3, 10 bytes, RFC 6143 7.5.3) after every update, and with servers that offer them
 *   (TigerVNC's Xvnc does) EnableContinuousUpdates (150, 10 bytes) and ClientFence replies to the
 *   server's round-trip fences (248, 9 bytes plus a payload of up to 64). A message made only of
 *   such records is not input; anything else is (KeyEvent, PointerEvent, ClientCutText, QEMU's
 *   extended key events, SetDesktopSize from a resized window, a record cut short).
 * - Serial: every byte from the browser is something typed: any message is input.
 * - SPICE: spice-html5 opens one WebSocket per channel, and the main and display channels carry
 *   the client's pongs and acks while nobody types; Porthole relays SPICE without reading it, so
 *   any message counts as input there too, and the idle timeout closes a SPICE channel only when
 *   its browser has gone silent on it (documented in the README).
 */
import type { InputTest } from './relay.ts';

const FRAMEBUFFER_UPDATE_REQUEST = 3;
const ENABLE_CONTINUOUS_UPDATES = 150;
const CLIENT_FENCE = 248;
/** ClientFence: type, 3 padding, 4 flags, 1 length, then that many bytes (at most 64, RFC 6143 7.7.1). */
const FENCE_HEADER = 9;
const FENCE_MAX_PAYLOAD = 64;

/** RFB: false only for a message made wholly of update requests, continuous-update switches and fences. */
export const rfbIsInput: InputTest = (data) => {
  let at = 0;
  const n = data.length;
  if (n === 0) return false;
  while (at < n) {
    const type = data[at]!;
    if (type === FRAMEBUFFER_UPDATE_REQUEST || type === ENABLE_CONTINUOUS_UPDATES) {
      at += 10;
    } else if (type === CLIENT_FENCE) {
      if (at + FENCE_HEADER > n) return true;
      const length = data[at + 8]!;
      if (length > FENCE_MAX_PAYLOAD) return true;
      at += FENCE_HEADER + length;
    } else {
      return true;
    }
  }
  // a record cut short is not one of the three: count it as input rather than close on it
  return at !== n;
};

/** Serial and SPICE: every message is input. */
export const anyMessageIsInput: InputTest = () => true;
