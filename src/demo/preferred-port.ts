/**
 * @module demo/preferred-port
 * Starting a demo server on the port an earlier start had (so the console URLs handed out then
 * keep working), or on any free port when another program holds that one.
 */

/** `start(port)`, and when `anyIfTaken` and that port is in use, `start(0)` instead. */
export async function startOnPreferredPort<T>(port: number, anyIfTaken: boolean, start: (port: number) => Promise<T>): Promise<T> {
  if (!anyIfTaken || port === 0) return start(port);
  try {
    return await start(port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    return start(0);
  }
}
