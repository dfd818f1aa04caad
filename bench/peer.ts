/**
 * @module bench/peer
 * For the benchmark's own peer processes (bench/backend.ts, bench/tcp-relay.ts): stop on SIGTERM
 * or SIGINT, and when the benchmark that started them goes without killing them (it keeps their
 * stdin open, so stdin ends when it dies).
 */
export function stopWithParent(stop: () => void): void {
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}
