// Step: a deleted snapshot's data leaves the hosts. Each VM's libvirt snapshot is deleted on the
// host the status names (its data lives in that VM's qcow2 files). A host that is in its pool but
// does not answer holds the finalizer (looked at again later); a host or pool that is gone, or a
// domain that is gone (its VM deleted: the disks went with it), leaves nothing to delete.
import type { SnapshotVmEntry } from '../../api/virtualmachinesnapshot.js';
import type { Fleet } from '../../hosts/fleet.js';
import { isHypervisorError } from '../../hypervisors/hypervisor.js';

export interface CleanupResult {
  /** Hosts that still hold data and could not be reached: keep the finalizer. */
  waiting: string[];
  /** What was deleted, and what was left because its host is gone. */
  deleted: string[];
  gone: string[];
}

export async function deleteHostSnapshots(entries: readonly SnapshotVmEntry[], fleet: Fleet): Promise<CleanupResult> {
  const result: CleanupResult = { waiting: [], deleted: [], gone: [] };
  await Promise.all(
    entries.map(async (entry) => {
      const host = fleet.host(entry.pool, entry.host);
      if (!host || !host.inSpec) {
        result.gone.push(`${entry.vm} (host ${entry.host} is no longer in HostPool ${entry.pool})`);
        return;
      }
      if (!host.verdict.readiness.ready) {
        result.waiting.push(`${entry.vm} on host ${entry.host} (${host.verdict.readiness.reason ?? 'not ready'})`);
        return;
      }
      try {
        const removed = await fleet.hypervisor(host.uri).deleteSnapshot(entry.uid, entry.snapshotName);
        if (removed) result.deleted.push(`${entry.vm} on ${entry.host}`);
      } catch (error) {
        // The domain is gone with its VM (and the snapshot data with its disks).
        if (isHypervisorError(error, 'not-found')) return;
        result.waiting.push(`${entry.vm} on host ${entry.host} (${(error as Error).message})`);
      }
    }),
  );
  // In VM order, whatever order the hosts answered in.
  for (const list of [result.waiting, result.deleted, result.gone]) list.sort();
  return result;
}
