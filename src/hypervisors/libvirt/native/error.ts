/**
 * The error every failed libvirt call rejects with: libvirt's own code,
 * domain (the subsystem that failed) and message. Errors made by the binding
 * itself (a call on a closed connection) use libvirt's codes too, with domain
 * VIR_FROM_NONE.
 */
export interface LibvirtErrorDetails {
  /** virErrorNumber, e.g. 42 */
  code: number;
  /** its constant's name, e.g. 'VIR_ERR_NO_DOMAIN' ('unknown' if this build's headers lack it) */
  codeName: string;
  /** virErrorDomain, e.g. 12 */
  domain: number;
  /** e.g. 'VIR_FROM_TEST', 'VIR_FROM_QEMU', 'VIR_FROM_RPC' */
  domainName: string;
  /** virErrorLevel: 1 warning, 2 error */
  level: number;
}

export class LibvirtError extends Error implements LibvirtErrorDetails {
  readonly code: number;
  readonly codeName: string;
  readonly domain: number;
  readonly domainName: string;
  readonly level: number;

  constructor(message: string, details: LibvirtErrorDetails) {
    super(message);
    this.name = 'LibvirtError';
    this.code = details.code;
    this.codeName = details.codeName;
    this.domain = details.domain;
    this.domainName = details.domainName;
    this.level = details.level;
  }
}

/** True when `error` is a LibvirtError with the given code name. */
export function isLibvirtError(error: unknown, codeName?: string): error is LibvirtError {
  return error instanceof LibvirtError && (codeName === undefined || error.codeName === codeName);
}
