/**
 * @module proxy/client-seam
 * The browser's WebSocket as the RFB security proxy sees it (`ClientSeam`, as Nova's
 * `TenantSock`): messages in through a reader with the handshake's deadline, one WebSocket
 * message out per RFB message. `release()` hands the WebSocket back for the relay.
 */
import type { WebSocket } from 'ws';
import { clientReader, type ClientSeam } from '../rfb/security-proxy.ts';

export function clientSeam(ws: WebSocket, timeoutMs: number): { seam: ClientSeam; release: () => void } {
  const reader = clientReader(timeoutMs);
  const onMessage = (data: Buffer) => reader.push(data);
  const onClose = () => reader.end('the WebSocket closed');
  const onError = (err: Error) => reader.end(err.message);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  if (ws.readyState !== ws.OPEN) onClose();
  return {
    seam: { reader, send: (message) => ws.send(message, BINARY) },
    release() {
      reader.finish();
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
    },
  };
}

const BINARY = { binary: true } as const;
