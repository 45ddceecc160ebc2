// The I/O half of the location rule (vm/location.ts): asks hosts what they hold for a VM's UUID,
// and removes the copies the rule does not keep. A host that is not ready, or that does not answer,
// is reported unreachable (fenced when its fencing command confirmed power-off); nothing is
// guessed.
import { errorText } from '../error-text.js';
import { ignoring, isHypervisorError } from '../../hypervisors/hypervisor.js';
import type { Fleet } from '../../hosts/fleet.js';
import type { Removal, Sighting } from './location.js';

export class VmCopies {
  constructor(private readonly fleet: Fleet) {}

  /**
   * What each of `hosts` (names in `pool`; 'all': every host of the pool) says about `uid`.
   * Hosts in `answered` were just heard from (the pool's scan found a copy there): they are asked
   * even before the HostPool controller calls them ready again, and what they say beats a fence.
   * Hosts in `leased` that do not answer are reported leased: a copy there holds the VM's lease.
   */
  async sight(
    pool: string,
    uid: string,
    hosts: string[] | 'all',
    answered: ReadonlySet<string> = new Set(),
    leased: ReadonlySet<string> = new Set(),
  ): Promise<Sighting[]> {
    const names = hosts === 'all' ? this.fleet.hosts(pool).map((host) => host.name) : [...new Set(hosts)];
    return Promise.all(
      names.map(async (name): Promise<Sighting> => {
        const host = this.fleet.host(pool, name);
        if (!host) return { host: name, reach: 'unreachable' };
        const silent: Sighting = {
          host: name,
          reach: host.verdict.fencing?.state === 'Fenced' ? 'fenced' : leased.has(name) ? 'leased' : 'unreachable',
        };
        if (!host.verdict.readiness.ready && !answered.has(name)) return silent;
        try {
          const domain = await this.fleet.hypervisor(host.uri).lookup(uid);
          return domain
            ? { host: name, reach: 'reachable', domain: { state: domain.state, reason: domain.reason } }
            : { host: name, reach: 'reachable' };
        } catch (error) {
          if (isHypervisorError(error, 'unreachable')) return silent;
          throw error;
        }
      }),
    );
  }

  /** Destroys and undefines each copy; returns the ones removed (a host that stopped answering keeps its copy, and says so). */
  async remove(
    pool: string,
    uid: string,
    removals: Removal[],
  ): Promise<{ removed: Removal[]; failed: Array<Removal & { error: string }> }> {
    const removed: Removal[] = [];
    const failed: Array<Removal & { error: string }> = [];
    await Promise.all(
      removals.map(async (removal) => {
        const host = this.fleet.host(pool, removal.host);
        if (!host) return;
        const hypervisor = this.fleet.hypervisor(host.uri);
        try {
          await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
          await ignoring(['not-found'], () => hypervisor.undefine(uid));
          removed.push(removal);
        } catch (error) {
          failed.push({ ...removal, error: errorText(error) });
        }
      }),
    );
    return { removed, failed };
  }
}
