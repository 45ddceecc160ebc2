// Checks for every value that goes into domain XML. The XML library escapes text and
// attributes, so nothing can break out of its element; these checks refuse what libvirt (or the
// guest) would misread even when escaped: paths that climb out of their directory, control
// characters, newlines in one-line values, absurd sizes. The API server checks most of these
// already; the builder checks again because it is the last step before a host, and because host
// facts (disk paths, bridge names) never went through the API server.
import {
  ABSOLUTE_PATH,
  DNS_LABEL,
  DNS_SUBDOMAIN,
  INTERFACE_NAME,
  LIBVIRT_NAME,
  type NamedPattern,
} from '../api/common.js';
import { parseQuantity } from '../api/quantity.js';

/** A value the builder refuses; `field` names it as the user wrote it (e.g. `spec.disks[0].path`). */
export class DomainSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'DomainSpecError';
  }
}

const compiled = new Map<string, RegExp>();

function matches(pattern: NamedPattern, value: string): boolean {
  let re = compiled.get(pattern.pattern);
  if (!re) {
    re = new RegExp(pattern.pattern, 'u');
    compiled.set(pattern.pattern, re);
  }
  return value.length <= pattern.maxLength && re.test(value);
}

function checkPattern(field: string, value: unknown, pattern: NamedPattern): string {
  if (typeof value !== 'string') throw new DomainSpecError(field, `must be a string, not ${typeof value}`);
  if (value.length > pattern.maxLength) {
    throw new DomainSpecError(field, `is ${value.length} characters long; at most ${pattern.maxLength} are allowed`);
  }
  if (!matches(pattern, value)) throw new DomainSpecError(field, pattern.hint(value));
  return value;
}

export const dnsLabel = (field: string, value: unknown): string => checkPattern(field, value, DNS_LABEL);
export const dnsSubdomain = (field: string, value: unknown): string => checkPattern(field, value, DNS_SUBDOMAIN);
export const libvirtName = (field: string, value: unknown): string => checkPattern(field, value, LIBVIRT_NAME);
export const interfaceName = (field: string, value: unknown): string => checkPattern(field, value, INTERFACE_NAME);

/** An absolute host path of plain file-name characters, without `.` or `..` segments. */
export function hostPath(field: string, value: unknown): string {
  const path = checkPattern(field, value, ABSOLUTE_PATH);
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new DomainSpecError(
      field,
      `${JSON.stringify(path)} contains a '.' or '..' segment; give the path without them`,
    );
  }
  return path;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UUID in libvirt's canonical form (lower-case, hyphenated), as Kubernetes writes UIDs. */
export function uuid(field: string, value: unknown): string {
  if (typeof value !== 'string' || !UUID.test(value)) {
    throw new DomainSpecError(
      field,
      `${JSON.stringify(value)} is not a lower-case UUID such as 0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f`,
    );
  }
  return value;
}

const CPU_MODEL = /^[A-Za-z0-9_.-]{1,64}$/;

export function cpuModel(field: string, value: unknown): string {
  if (typeof value !== 'string' || !CPU_MODEL.test(value)) {
    throw new DomainSpecError(
      field,
      `${JSON.stringify(value)} is not a CPU model name (host-passthrough, host-model, or e.g. Skylake-Server)`,
    );
  }
  return value;
}

const MAC = /^[0-9A-Fa-f][02468ACEace](:[0-9A-Fa-f]{2}){5}$/;

export function macAddress(field: string, value: unknown): string {
  if (typeof value !== 'string' || !MAC.test(value)) {
    throw new DomainSpecError(field, `${JSON.stringify(value)} is not a unicast MAC address such as 52:54:00:12:34:56`);
  }
  return value.toLowerCase();
}

// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: a kernel command
// line is one line, and XML 1.0 cannot carry most C0 characters at all.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;
const LONE_SURROGATE = /\p{Cs}/u;
// U+FFFE and U+FFFF are outside XML 1.0's Char production: libvirt's parser refuses the document.
const NOT_XML = /[\ufffe\uffff]/u;
const MAX_CMDLINE = 4096;

/** A kernel command line: one line, printable; quotes and '<' are fine (the library escapes them). */
export function kernelCmdline(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new DomainSpecError(field, `must be a string, not ${typeof value}`);
  // Characters as the API server counts them (code points), so both refuse the same values.
  const length = [...value].length;
  if (length > MAX_CMDLINE)
    throw new DomainSpecError(field, `is ${length} characters long; at most ${MAX_CMDLINE} are allowed`);
  if (CONTROL.test(value))
    throw new DomainSpecError(field, 'must be a single line without control characters (newline, tab, NUL…)');
  if (LONE_SURROGATE.test(value))
    throw new DomainSpecError(field, 'contains a lone UTF-16 surrogate, which XML cannot carry');
  if (NOT_XML.test(value)) throw new DomainSpecError(field, 'contains U+FFFE or U+FFFF, which XML cannot carry');
  return value;
}

export function integer(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DomainSpecError(field, `${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

const KIB = 1024n;

/**
 * A Kubernetes memory quantity in KiB, rounded up ("1G" is 976562.5 KiB → 976563), between
 * `minKiB` and `maxKiB`. Exact: quantities are rationals (api/quantity.ts), not floats.
 */
export function memoryKiB(field: string, value: unknown, minKiB: number, maxKiB: number): number {
  const q = typeof value === 'string' ? parseQuantity(value) : undefined;
  if (!q || q.negative)
    throw new DomainSpecError(field, `${JSON.stringify(value)} is not a memory size such as 512Mi or 4Gi`);
  let numerator = q.digits * 2n ** BigInt(q.exp2);
  let denominator = KIB;
  if (q.exp10 >= 0) numerator *= 10n ** BigInt(q.exp10);
  else denominator *= 10n ** BigInt(-q.exp10);
  // The bounds hold for the exact size, not the rounded one: 16777215 (one byte short of 16Mi)
  // rounds up to 16384 KiB but is below 16Mi, as the API server's rule says.
  if (numerator < BigInt(minKiB) * denominator || numerator > BigInt(maxKiB) * denominator) {
    throw new DomainSpecError(field, `${JSON.stringify(value)} is outside ${minKiB} KiB to ${maxKiB} KiB`);
  }
  const kib = (numerator + denominator - 1n) / denominator;
  if (kib < BigInt(minKiB) || kib > BigInt(maxKiB)) {
    throw new DomainSpecError(field, `${JSON.stringify(value)} is outside ${minKiB} KiB to ${maxKiB} KiB`);
  }
  return Number(kib);
}
