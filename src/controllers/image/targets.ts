// Step: targets. The hosts an image goes to: every host of its HostPool, or, when the pool's
// storage is shared (HostPool spec.storage.shared), one ready host that imports it for all.
import type { Fleet, FleetHost } from '../../hosts/fleet.js';
import type { PoolObject } from '../resources.js';

export interface ImageTargets {
  shared: boolean;
  /** Hosts to have the image, with their fleet record when they are ready to take calls. */
  hosts: Array<{ name: string; ready: FleetHost | undefined; why?: string }>;
}

export function imageTargets(pool: PoolObject, fleet: Fleet): ImageTargets {
  const poolName = pool.metadata.name ?? '';
  const hosts = pool.spec.hosts.map((declared) => {
    const host = fleet.host(poolName, declared.name);
    const ready = host?.verdict.readiness.ready && host.observed.facts ? host : undefined;
    const why = !host
      ? `host ${declared.name} is not connected yet`
      : `host ${declared.name} is not ready: ${host.verdict.readiness.reason} (${host.verdict.readiness.message})`;
    return ready ? { name: declared.name, ready } : { name: declared.name, ready, why };
  });
  if (!pool.spec.storage.shared) return { shared: false, hosts };
  const first = hosts.find((host) => host.ready) ?? hosts[0];
  return { shared: true, hosts: first ? [first] : [] };
}
