/**
 * @module api/microversion
 * Compute API microversions as Nova reads them (microversion_parse): `OpenStack-API-Version:
 * compute X.Y` wins over the legacy `X-OpenStack-Nova-API-Version: X.Y`; absent means 2.1;
 * `latest` means the maximum; a malformed value is 400 and one out of range is 406, both with
 * Nova's messages. Every response names the version it was served at and `Vary`s on both headers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors.ts';

export interface Microversion {
  readonly major: number;
  readonly minor: number;
}

export const MIN_VERSION: Microversion = { major: 2, minor: 1 };
/**
 * 2.99 is the last microversion whose console behaviour Porthole implements (remote-consoles
 * schemas through `spice-direct`, `tls_port` in console auth tokens).
 */
export const MAX_VERSION: Microversion = { major: 2, minor: 99 };

export const HEADER = 'OpenStack-API-Version';
export const LEGACY_HEADER = 'X-OpenStack-Nova-API-Version';

export function formatVersion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

export function atLeast(v: Microversion, minor: number): boolean {
  return v.major > 2 || (v.major === 2 && v.minor >= minor);
}

export function requestedVersion(headers: IncomingHttpHeaders): Microversion {
  const raw = fromStandardHeader(headers['openstack-api-version']) ?? single(headers['x-openstack-nova-api-version']);
  if (raw === undefined) return MIN_VERSION;
  const text = raw.trim();
  if (text.toLowerCase() === 'latest') return MAX_VERSION;
  // Nova's APIVersionRequest pattern: no leading zeros, so `2.01` is malformed rather than 2.1
  const m = /^([1-9]\d*)\.([1-9]\d*|0)$/.exec(text);
  if (!m) {
    throw new GatewayError('BAD_REQUEST', `API Version String ${text} is of invalid format. Must be of format MajorNum.MinorNum.`, { status: 400 });
  }
  const v = { major: Number(m[1]), minor: Number(m[2]) };
  if (compare(v, MIN_VERSION) < 0 || compare(v, MAX_VERSION) > 0) {
    throw new GatewayError('NOT_ACCEPTABLE', `Version ${formatVersion(v)} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(MAX_VERSION)}.`, { status: 406 });
  }
  return v;
}

export function versionHeaders(v: Microversion): Record<string, string> {
  return {
    [HEADER]: `compute ${formatVersion(v)}`,
    [LEGACY_HEADER]: formatVersion(v),
    Vary: `${HEADER}, ${LEGACY_HEADER}`,
  };
}

function compare(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

/** `compute 2.6` (possibly among other services, comma-separated or repeated) → `2.6` */
function fromStandardHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parts = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(','));
  let found: string | undefined;
  for (const part of parts) {
    const [service, version] = part.trim().split(/\s+/, 2);
    if (service?.toLowerCase() === 'compute' && version !== undefined) found = version;
  }
  return found;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}
