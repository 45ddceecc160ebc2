// The HostPool controller's orphan scans (orphan-domains.ts does one scan): when each host is
// scanned, the Events when a pool's orphans change, the copies of VMs that live elsewhere
// reported to the VM controller, and the domain events and VM deletions that ask for a scan.
//
// Scans run on a reachable host at first contact and after a reconnect (the facts are read
// again), every orphanScanIntervalMs, and soon after a domain event of a UUID that is no VM's
// (a domain came or went behind the controller's back) or a VM's deletion (its domain may have
// been left behind when its finalizer was removed by hand).
import type { FleetHost } from '../hosts/fleet.js';
import { ignoring } from '../hypervisors/hypervisor.js';
import { untilAborted } from '../runtime/abort.js';
import { CORE_EVENT } from '../runtime/events.js';
import type { KubeObject } from '../runtime/kube-client.js';
import type { Source } from '../runtime/sources.js';
import type { HostPoolControllerOptions } from './hostpool.js';
import { HostOrphanScan, orphanList, withDeadline, type HostOrphans, type OrphanDomain } from './orphan-domains.js';
import { EVENT_COMPONENT, POOL_EVENTS, VM_EVENTS } from './reasons.js';
import type { PoolObject } from './resources.js';

type Reported = { host: string; uri: string; orphan: OrphanDomain };

export class PoolOrphans {
  /** Orphan scan state per host; a host given a new URI is a new FleetHost, and starts afresh. */
  private readonly scans = new WeakMap<FleetHost, HostOrphanScan>();
  /** Per pool, the orphans last reported (`host/uuid` → what the Event names), for Events on change. */
  private readonly reported = new Map<string, Map<string, Reported>>();
  /** By orphan UUID: whether a `Deleted` Event of its VM exists (deletedBefore). */
  private readonly deletionEvents = new Map<string, boolean>();

  constructor(
    private readonly options: HostPoolControllerOptions,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  scanOf(host: FleetHost): HostOrphanScan {
    let scan = this.scans.get(host);
    if (!scan) {
      scan = new HostOrphanScan();
      this.scans.set(host, scan);
    }
    return scan;
  }

  /** The orphans of the host's last scan; undefined before one finished. */
  orphansOf(host: FleetHost): OrphanDomain[] | undefined {
    return this.scans.get(host)?.orphans;
  }

  /** The pool is gone and so are its hosts: nothing more to compare against. */
  forgetPool(pool: string): void {
    this.reported.delete(pool);
  }

  /**
   * Scans each due host of the pool and reports, from the scans just made, the copies of VMs
   * that live elsewhere (reportStrayCopies).
   */
  async scanDue(pool: PoolObject, hosts: FleetHost[], timeoutMs: number): Promise<void> {
    const scannedBefore = new Map(hosts.map((host) => [host, this.scanOf(host).lastScanAt]));
    await Promise.all(hosts.map((host) => this.scanIfDue(host, timeoutMs)));
    const scanned = hosts.filter((host) => this.scanOf(host).lastScanAt > (scannedBefore.get(host) ?? 0));
    await Promise.all(scanned.map((host) => this.removeLeftovers(pool, host, timeoutMs)));
    for (const host of scanned) this.reportStrayCopies(pool.metadata.name ?? '', host);
  }

  /**
   * Orphans of VMs this controller deleted (this process, or an earlier one whose `Deleted`
   * Event is still in the API) are removed, not reported: the deletion found no domain and let
   * the VM go, and then a define or start sent by a killed controller completed (the
   * faults-under-load storm saw it). Nobody's data is at stake: the VM's owner deleted it.
   * Orphans of any other VM are only reported: a person decides.
   */
  private async removeLeftovers(pool: PoolObject, host: FleetHost, timeoutMs: number): Promise<void> {
    const scan = this.scanOf(host);
    const leftovers: OrphanDomain[] = [];
    for (const orphan of scan.orphans ?? [])
      if (this.options.fleet.deletedHere(orphan.uuid, this.now()) || (await this.deletedBefore(orphan)))
        leftovers.push(orphan);
    if (leftovers.length === 0) return;
    const hypervisor = this.options.fleet.hypervisor(host.uri);
    for (const orphan of leftovers) {
      try {
        await withDeadline(
          (async () => {
            await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(orphan.uuid));
            await ignoring(['not-found'], () => hypervisor.undefine(orphan.uuid));
          })(),
          timeoutMs,
          `remove domain ${orphan.name} on ${host.uri}`,
        );
      } catch (error) {
        this.options.logger.warn(
          { host: host.name, domain: orphan.name, err: error },
          'cannot remove a leftover domain',
        );
        continue;
      }
      scan.orphans = scan.orphans?.filter((found) => found.uuid !== orphan.uuid);
      void this.options.events?.record(
        pool,
        'Normal',
        POOL_EVENTS.LeftoverDomainRemoved,
        `removed domain ${orphan.name} from ${host.name}: VM ${orphan.vm.namespace}/${orphan.vm.name} was deleted, ` +
          'and a start sent before a controller restart completed after its deletion',
      );
    }
  }

  /**
   * Scans a reachable host for orphan domains when a scan is due: first contact or reconnect,
   * a domain event that asked for one, or orphanScanIntervalMs since the last. A failed scan
   * keeps the last result and is tried again at the next reconcile.
   */
  private async scanIfDue(host: FleetHost, timeoutMs: number): Promise<void> {
    const scan = this.scanOf(host);
    if (!scan.due && this.now() - scan.lastScanAt < this.intervalMs) return;
    const { credentialsProblem, disconnected, facts, missedBeats } = host.observed;
    if (credentialsProblem || disconnected || !facts || missedBeats > 0) return; // not now: it is not answering
    const { vms, vmNamespace, metrics, logger } = this.options;
    try {
      await scan.scan({
        hypervisor: this.options.fleet.hypervisor(host.uri),
        knownUids: () => new Set(vms.list().map((vm) => vm.metadata.uid ?? '')),
        judges: (marker) => vmNamespace === undefined || marker.namespace === vmNamespace,
        timeoutMs,
      });
      metrics?.orphanScans.inc({ pool: host.pool, result: 'success' });
    } catch (error) {
      metrics?.orphanScans.inc({ pool: host.pool, result: 'error' });
      logger.warn({ pool: host.pool, host: host.name, err: error }, 'orphan domain scan failed');
    }
  }

  /**
   * Copies of VMs whose status names another host (moved off this host while it was down, or a
   * migration this host took part in), from the scan just made: reported to the VM controller,
   * which alone decides what becomes of a VM's copies, by the one location rule (vm/location.ts):
   * a stopped copy is removed, a running one only on evidence. A VM whose migration is under way
   * is left alone: its domain is on both hosts for a while.
   */
  private reportStrayCopies(poolName: string, host: FleetHost): void {
    const { vms, allocations, fleet } = this.options;
    const byUid = new Map(vms.list().map((vm) => [vm.metadata.uid ?? '', vm]));
    for (const domain of this.scanOf(host).lastDomains) {
      const vm = byUid.get(domain.uuid);
      if (!vm || vm.spec.hostPoolRef.name !== poolName) continue;
      const placed = allocations.hostOf(vm);
      if (
        !placed ||
        placed === host.name ||
        vm.status?.migration ||
        vm.status?.phase === 'Migrating' ||
        allocations.migrating.has(domain.uuid)
      )
        continue;
      fleet.reportStrayCopy(domain.uuid, host.name);
    }
  }

  /**
   * Whether an earlier controller process deleted the orphan's VM: its `Deleted` Event (written
   * before the finalizer went) is still in the API (Events live an hour by default). Asked once
   * per orphan; the answer is kept while the domain is an orphan.
   */
  private async deletedBefore(orphan: OrphanDomain): Promise<boolean> {
    const known = this.deletionEvents.get(orphan.uuid);
    if (known !== undefined) return known;
    let found: boolean;
    try {
      const events = await this.options.client.list<KubeObject & { source?: { component?: string } }>(CORE_EVENT, {
        namespace: orphan.vm.namespace,
        fieldSelector: `involvedObject.uid=${orphan.uuid},reason=${VM_EVENTS.Deleted}`,
      });
      found = events.items.some((event) => event.source?.component === EVENT_COMPONENT);
    } catch (error) {
      this.options.logger.warn(
        { vm: `${orphan.vm.namespace}/${orphan.vm.name}`, err: error },
        "cannot read the Events of an orphan domain's VM",
      );
      return false; // asked again at the next scan
    }
    if (this.deletionEvents.size > 10_000) this.deletionEvents.clear();
    this.deletionEvents.set(orphan.uuid, found);
    return found;
  }

  /** A Warning Event naming orphans that appeared, a Normal one naming those gone; nothing when unchanged. */
  reportChanges(pool: PoolObject, hosts: FleetHost[]): void {
    const name = pool.metadata.name ?? '';
    const current = new Map<string, Reported>();
    for (const host of hosts) {
      for (const orphan of this.orphansOf(host) ?? [])
        current.set(`${host.name}/${orphan.uuid}`, { host: host.name, uri: host.uri, orphan });
    }
    const previous = this.reported.get(name) ?? new Map<string, Reported>();
    this.reported.set(name, current);
    const appeared = [...current].filter(([key]) => !previous.has(key)).map(([, entry]) => entry);
    // Only from hosts still scanned under the same URI: a host that left the pool (or changed
    // URI) says nothing about its domains.
    const scanned = new Set(hosts.filter((host) => this.orphansOf(host)).map((host) => `${host.name} ${host.uri}`));
    const gone = [...previous]
      .filter(([key, entry]) => !current.has(key) && scanned.has(`${entry.host} ${entry.uri}`))
      .map(([, entry]) => entry);
    const events = this.options.events;
    if (!events) return;
    if (appeared.length > 0) {
      void events.record(
        pool,
        'Warning',
        POOL_EVENTS.OrphanDomainsFound,
        `${appeared.length} domain${appeared.length === 1 ? '' : 's'} with virtfleet's marker but no VirtualMachine (not touched; see condition OrphanDomains): ${orphanList(byHost(appeared))}`,
      );
    }
    if (gone.length > 0) {
      void events.record(
        pool,
        'Normal',
        POOL_EVENTS.OrphanDomainsGone,
        `no longer on their hosts: ${orphanList(byHost(gone))}`,
      );
    }
  }

  /**
   * Domain events that may change a host's orphans ask for a scan of that host and enqueue its
   * pools: events of a UUID that is no cached VM's (a VM's own domain events are the VM
   * controller's business), except those of domains already known not to be virtfleet's
   * (unless redefined). A deleted VM asks for a scan of its host: its domain is normally gone
   * first, but not when its finalizer was removed by hand.
   */
  triggers(): Source {
    const { fleet, pools, vms, allocations } = this.options;
    return async (controller, signal) => {
      const uids = new Set<string>();
      const offVms = vms.on((event) => {
        const uid = event.object.metadata.uid ?? '';
        if (event.type !== 'delete') {
          uids.add(uid);
          return;
        }
        uids.delete(uid);
        const poolName = event.object.spec.hostPoolRef.name;
        const hostName = allocations.hostOf(event.object);
        const host = hostName ? fleet.host(poolName, hostName) : undefined;
        if (host) this.scanOf(host).due = true; // watchMapped enqueues the pool
      });
      for (const vm of vms.list()) uids.add(vm.metadata.uid ?? '');
      const offFleet = fleet.onDomainEvent((uid, event, uri) => {
        if (event.type !== 'lifecycle' || uids.has(uid)) return;
        for (const pool of pools.list()) {
          const poolName = pool.metadata.name ?? '';
          for (const host of fleet.hosts(poolName)) {
            if (host.uri !== uri) continue;
            const scan = this.scanOf(host);
            if (scan.isForeign(uid) && event.event !== 'defined') continue;
            scan.due = true;
            controller.enqueue(poolName);
          }
        }
      });
      await untilAborted(signal);
      offVms();
      offFleet();
    };
  }
}

function byHost(entries: Reported[]): HostOrphans[] {
  const grouped = new Map<string, HostOrphans>();
  for (const { host, uri, orphan } of entries) {
    const group = grouped.get(host) ?? { host, uri, orphans: [] };
    group.orphans.push(orphan);
    grouped.set(host, group);
  }
  return [...grouped.values()];
}
