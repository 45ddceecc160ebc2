// The libvirt HypervisorFactory: the one place that puts the Fleet (src/hosts) on libvirt's
// classes. One connection pool for the controllers' calls and the hosts' events, and two side
// pools (same credentials), each made at its first use:
// - migration: on libvirt 9.0 other calls on a connection that carries a migration often wait
//   for the next keepalive (5 s), so migrate() gets a connection of its own;
// - heartbeat: on the shared connection a heartbeat would wait behind slow calls (domain starts
//   during a recovery) and a busy, healthy host would miss beats. Not for test:/// hosts, whose
//   calls never block and where a second connection would be a second simulated host in memory.
import type { HostCredentials } from '../hypervisors/hypervisor.js';
import { LibvirtConnectionPool } from '../hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../hypervisors/libvirt/driver.js';
import type { HypervisorFactory, HypervisorRole } from '../hosts/hypervisor-factory.js';

export interface LibvirtHypervisorsOptions {
  /**
   * The connection pool to use. Default: a pool of the factory's own, closed by close(). Tests
   * pass one to outlive a controller restart: a test:/// host lives in its connection.
   */
  connections?: LibvirtConnectionPool;
}

export function libvirtHypervisors(options: LibvirtHypervisorsOptions = {}): HypervisorFactory {
  const owned = options.connections === undefined;
  const connections = options.connections ?? new LibvirtConnectionPool();
  const sidePools = new Map<'migration' | 'heartbeat', LibvirtConnectionPool>();
  let credentials: ((uri: string) => HostCredentials | undefined) | undefined;
  const sidePool = (kind: 'migration' | 'heartbeat'): LibvirtConnectionPool => {
    let pool = sidePools.get(kind);
    if (!pool) {
      pool = new LibvirtConnectionPool();
      if (credentials) pool.setCredentials(credentials);
      sidePools.set(kind, pool);
    }
    return pool;
  };
  return {
    hypervisor(uri: string, role: HypervisorRole) {
      if (role === 'heartbeat' && !uri.startsWith('test:')) return new LibvirtHypervisor(sidePool('heartbeat'), uri);
      return new LibvirtHypervisor(connections, uri, { migrationPool: sidePool('migration') });
    },
    useCredentials(provider) {
      credentials = provider;
      connections.setCredentials(provider);
      for (const pool of sidePools.values()) pool.setCredentials(provider);
    },
    async release(uri) {
      // Only a pool of our own is ours to shrink; a shared one belongs to whoever passed it in.
      await Promise.all([
        ...(owned ? [connections.release(uri)] : []),
        ...[...sidePools.values()].map((pool) => pool.release(uri)),
      ]);
    },
    async close() {
      await Promise.all([
        ...(owned ? [connections.closeAll()] : []),
        ...[...sidePools.values()].map((pool) => pool.closeAll()),
      ]);
    },
  };
}
