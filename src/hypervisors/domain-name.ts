// The libvirt domain name of a VirtualMachine: readable in `virsh list`, unique per VM object.
//
//   vf-<namespace>_<name>                     when that is at most 64 characters
//   vf-<first 50 characters of it>-<10 hex>   otherwise; the hex is from SHA-256 of the UID
//
// '_' separates namespace from name because neither a namespace (a DNS label) nor a name (a DNS
// subdomain) can contain it, so two different VMs never map to the same untruncated name
// ('-' would: a-b/c and a/b-c). Truncated names end in a hash of the UID, so long names that
// share a prefix still differ. Identity never rests on the name anyway: the domain UUID is the
// VM's UID, and libvirt refuses to define a second UUID under a name already taken.
import { createHash } from 'node:crypto';
import { dnsLabel, dnsSubdomain, uuid } from './domain-values.js';

export const DOMAIN_NAME_PREFIX = 'vf-';
/** Longest domain name made; short enough for `virsh list` and for QEMU's per-domain paths. */
export const MAX_DOMAIN_NAME = 64;
const HASH_CHARS = 10;

/** The domain name for VM `namespace/name` with UID `uid`; throws DomainSpecError for invalid parts. */
export function domainName(namespace: string, name: string, uid: string): string {
  const full = `${DOMAIN_NAME_PREFIX}${dnsLabel('metadata.namespace', namespace)}_${dnsSubdomain('metadata.name', name)}`;
  if (full.length <= MAX_DOMAIN_NAME) return full;
  const hash = createHash('sha256').update(uuid('metadata.uid', uid)).digest('hex').slice(0, HASH_CHARS);
  return `${full.slice(0, MAX_DOMAIN_NAME - HASH_CHARS - 1)}-${hash}`;
}
