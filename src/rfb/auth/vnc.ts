/**
 * @module rfb/auth/vnc
 * VNC Authentication (RFC 6143 §7.2.2): the server sends a 16-byte challenge, the client answers
 * with it DES-encrypted under the password (its first 8 bytes, zero-padded, each byte's bits
 * mirrored: the VNC variant of the key schedule). Used as security type 2 and inside VeNCrypt's
 * X509Vnc/TLSVnc. Porthole holds the password; the browser never sees it.
 *
 * DES is not in Node 20's OpenSSL 3 without the legacy provider, so this reuses the VNC DES of
 * noVNC (`@novnc/novnc/core/crypto/des.js`, a dependency already served to the browser), loaded
 * by path because the package exports only its `core/rfb.js`.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { SecurityType, type AuthScheme, type BackendTransport } from '../types.ts';

export const CHALLENGE_LENGTH = 16;

interface DesCipher {
  encrypt(algorithm: { name: string }, plaintext: Uint8Array): Uint8Array | null;
}
interface DesModule {
  DESECBCipher: { importKey(key: Uint8Array): DesCipher };
}

const NOVNC_DES = new URL('crypto/des.js', pathToFileURL(createRequire(import.meta.url).resolve('@novnc/novnc')));
let desModule: Promise<DesModule> | undefined;

/** The answer to a VNC Authentication challenge. */
export async function vncAuthResponse(password: string, challenge: Buffer): Promise<Buffer> {
  if (challenge.length !== CHALLENGE_LENGTH) throw new Error(`VNC challenge must be ${CHALLENGE_LENGTH} bytes`);
  desModule ??= import(NOVNC_DES.href) as Promise<DesModule>;
  const { DESECBCipher } = await desModule;
  const key = new Uint8Array(8);
  // VNC servers (TigerVNC's vncpasswd, QEMU's set_password) use only the first 8 bytes
  key.set(Buffer.from(password, 'utf8').subarray(0, 8));
  const out = DESECBCipher.importKey(key).encrypt({ name: 'DES-ECB' }, challenge);
  if (!out) throw new Error('DES encryption failed');
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Reads the challenge and answers it; SecurityResult follows (the caller reads it). */
export async function answerVncChallenge(transport: BackendTransport, password: string): Promise<void> {
  const challenge = await transport.reader.read(CHALLENGE_LENGTH, 'VNC Authentication challenge');
  transport.write(await vncAuthResponse(password, challenge));
}

export const vncAuth: AuthScheme = {
  name: 'vnc',
  securityType: SecurityType.VncAuth,
  unusable: (s) => (s.password === null ? 'no VNC password is set for this server' : null),
  async handshake(transport, settings) {
    await answerVncChallenge(transport, settings.password!);
    return 'VncAuth';
  },
};
