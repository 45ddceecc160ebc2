// Orphan domains: domains on a host that carry virtfleet's metadata marker (domain-xml.ts,
// `<metadata><vf:vm xmlns:vf=… namespace name uid/>`) but whose UUID is the UID of no
// VirtualMachine in the cache. They are reported (HostPool status, condition, Event, metric),
// never destroyed: only a person can tell a leftover from a VM object deleted by mistake. The
// one exception, a domain of a VM this process itself deleted, is removed by hostpool-orphans.ts.
//
// Cost of a scan: one domain list per host. Only domains whose UUID matches no cached VM have
// their XML read, once: the answer (marker or not) is remembered per UUID for as long as the
// domain is listed, so a host with foreign domains pays their XML reads on the first scan only.
//
// Races: a VM's object is in the cache before its domain is defined, and a deleted VM's domain
// is undefined before its finalizer lets the object go. The VMs are read both before the
// domain list and after the XML reads; a domain counts only when its UUID is in neither, so a
// VM deleted during the scan (listed, then undefined, then gone from the cache) is not an orphan.
import { METADATA_NAMESPACE } from '../hypervisors/domain-xml.js';
import { isHypervisorError, type DomainStatus, type Hypervisor } from '../hypervisors/hypervisor.js';
import { parseXml, type XmlElement } from '../hypervisors/xml.js';

/** The VM object a domain's marker names. */
export interface DomainMarker {
  namespace: string;
  name: string;
  uid: string;
}

export interface OrphanDomain {
  uuid: string;
  /** The libvirt domain name (what virsh takes). */
  name: string;
  /** The VirtualMachine the marker names (gone from the API). */
  vm: DomainMarker;
}

/** The marker of a domain XML, or undefined when the domain is not virtfleet's. */
export function domainMarker(xml: string): DomainMarker | undefined {
  if (!xml.includes(METADATA_NAMESPACE)) return undefined; // most foreign domains stop here, unparsed
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch {
    return undefined;
  }
  const metadata = root.children.find((element) => element.name === 'metadata');
  for (const element of metadata?.children ?? []) {
    // libvirt keeps the prefix it was given; look at the namespace, not the prefix.
    const [prefix, local] = element.name.includes(':') ? element.name.split(':', 2) : [undefined, element.name];
    const namespace = prefix === undefined ? element.attrs.xmlns : element.attrs[`xmlns:${prefix}`];
    if (local !== 'vm' || namespace !== METADATA_NAMESPACE) continue;
    return { namespace: element.attrs.namespace ?? '', name: element.attrs.name ?? '', uid: element.attrs.uid ?? '' };
  }
  return undefined;
}

export interface ScanInput {
  hypervisor: Hypervisor;
  /** UIDs of the VirtualMachines in the cache; called before the domain list and after the XML reads. */
  knownUids: () => Set<string>;
  /**
   * Whether the controller can judge a domain that names this VM: false for a namespace it does
   * not watch (its VMs are not in the cache). Default: every namespace.
   */
  judges?: (marker: DomainMarker) => boolean;
  /** Deadline of each libvirt call. */
  timeoutMs: number;
}

/** How many XML reads of one scan run at once. */
const XML_READS_AT_ONCE = 8;

/** What one host's scans remember: the marker (or its absence, null) per domain UUID. */
export class HostOrphanScan {
  /** Orphans found by the last scan that finished; undefined before the first one. */
  orphans: OrphanDomain[] | undefined;
  /** A scan should run at the next reconcile: first contact, reconnect, or a domain came or went. */
  due = true;
  /** When the last scan finished, epoch ms. */
  lastScanAt = 0;
  /** Every domain the last scan listed (stale copies are judged from it). */
  lastDomains: DomainStatus[] = [];
  private readonly markers = new Map<string, DomainMarker | null>();

  /** Whether the domain is known not to be virtfleet's (its events need no scan). */
  isForeign(uuid: string): boolean {
    return this.markers.get(uuid) === null;
  }

  async scan({ hypervisor, knownUids, judges = () => true, timeoutMs }: ScanInput): Promise<OrphanDomain[]> {
    // Cleared before looking: an event that asks for a scan while this one runs keeps it due.
    this.due = false;
    try {
      return await this.look(hypervisor, knownUids, judges, timeoutMs);
    } catch (error) {
      this.due = true;
      throw error;
    }
  }

  private async look(
    hypervisor: Hypervisor,
    knownUids: () => Set<string>,
    judges: (marker: DomainMarker) => boolean,
    timeoutMs: number,
  ): Promise<OrphanDomain[]> {
    const before = knownUids();
    const domains = await withDeadline(hypervisor.listDomains(), timeoutMs, `list domains of ${hypervisor.uri}`);
    this.lastDomains = domains;
    const listed = new Set(domains.map((domain) => domain.uuid));
    for (const uuid of this.markers.keys()) if (!listed.has(uuid)) this.markers.delete(uuid);

    const candidates = domains.filter((domain) => !before.has(domain.uuid));
    const unread = candidates.filter((domain) => !this.markers.has(domain.uuid));
    for (let start = 0; start < unread.length; start += XML_READS_AT_ONCE) {
      await Promise.all(
        unread.slice(start, start + XML_READS_AT_ONCE).map(async (domain) => {
          try {
            const xml = await withDeadline(
              hypervisor.xml(domain.uuid),
              timeoutMs,
              `read XML of domain ${domain.name} on ${hypervisor.uri}`,
            );
            this.markers.set(domain.uuid, domainMarker(xml) ?? null);
          } catch (error) {
            // Gone since the list: nothing to report, nothing to remember.
            if (!isHypervisorError(error, 'not-found')) throw error;
          }
        }),
      );
    }

    const after = knownUids();
    const orphans: OrphanDomain[] = [];
    for (const domain of candidates) {
      const marker = this.markers.get(domain.uuid);
      if (!marker || after.has(domain.uuid) || !judges(marker)) continue;
      orphans.push({ uuid: domain.uuid, name: domain.name, vm: marker });
    }
    // Code-point order: the same everywhere, whatever the locale.
    orphans.sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0,
    );
    this.orphans = orphans;
    this.lastScanAt = Date.now();
    return orphans;
  }
}

/** Orphans named in a condition message or Event, at most this many. */
export const ORPHANS_NAMED = 10;

export interface HostOrphans {
  host: string;
  uri: string;
  orphans: OrphanDomain[];
}

/**
 * `host-a (qemu+ssh://…): vf-ns_a, vf-ns_b; host-b (…): vf-x_y, and 3 more`: the first `max`
 * domain names, by host, with the URI virsh needs.
 */
export function orphanList(byHost: HostOrphans[], max = ORPHANS_NAMED): string {
  const total = byHost.reduce((sum, entry) => sum + entry.orphans.length, 0);
  const parts: string[] = [];
  let named = 0;
  for (const { host, uri, orphans } of byHost) {
    const names = orphans.slice(0, Math.max(0, max - named)).map((orphan) => orphan.name);
    if (names.length === 0) continue;
    named += names.length;
    parts.push(`${host} (${uri}): ${names.join(', ')}`);
  }
  return `${parts.join('; ')}${total > named ? `, and ${total - named} more` : ''}`;
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
