/**
 * @module demo/pixel-format
 * RFC 6143 §7.4 pixel formats as the demo server speaks them: the same as the server role of a
 * shared console (`rfb/shared/pixel-format.ts`): its own format (ServerInit), the 16-byte wire
 * form both ways, and why a format a client asks for is refused.
 */
export { decodePixelFormat as readPixelFormat, pixelFormatProblem, SERVER_PIXEL_FORMAT, writePixelFormat } from '../rfb/shared/pixel-format.ts';
export type { PixelFormat } from '../rfb/framebuffer/types.ts';
