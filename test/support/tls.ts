/**
 * @module test/support/tls
 * One TLS handshake with a local listener, as a client that checks the certificate against a
 * test CA would make it: what certificate it was shown and which protocol was agreed, or the
 * error that refused it.
 */
import { readFileSync } from 'node:fs';
import { connect, type ConnectionOptions, type PeerCertificate } from 'node:tls';

/** The certificate a TLS handshake with 127.0.0.1:`port` is shown, verified against `ca`. */
export function handshake(port: number, ca: string, opts: ConnectionOptions = {}): Promise<{ cert: PeerCertificate; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca), ...opts }, () => {
      const result = { cert: socket.getPeerCertificate(), protocol: socket.getProtocol() };
      socket.end();
      resolve(result);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')));
    socket.once('error', reject);
  });
}
