/**
 * @module consoles
 * Every console kind Porthole serves, and the lookups the API, the CLI and the proxy make by
 * name, Nova protocol or token console type. A new kind is one file here and one line below.
 */
import { novnc } from './novnc.ts';
import { serial } from './serial.ts';
import { spice } from './spice.ts';
import type { ConsoleKind } from './types.ts';

export type { ConsoleKind } from './types.ts';

export const CONSOLE_KINDS: readonly ConsoleKind[] = [novnc, serial, spice];

/** The kind whose listener serves tokens of `consoleType` (`novnc`), if any. */
export function kindOfConsoleType(consoleType: string): ConsoleKind | undefined {
  return CONSOLE_KINDS.find((k) => k.consoleTypes.includes(consoleType));
}

/** The kind that serves Nova's `protocol` (`vnc`), if any. */
export function kindOfProtocol(protocol: string): ConsoleKind | undefined {
  return CONSOLE_KINDS.find((k) => k.protocol === protocol);
}
