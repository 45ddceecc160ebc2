// Step: deletion. An image in use cannot vanish under its VMs: while a VM of its namespace names
// it in spec.disks[].source.image.name (linked clones read from its volume), deletion waits with
// the VMs named in Ready and an Event. Otherwise its volumes are deleted from every host that may
// have one, and the finalizer removed last.
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import type { VmObject } from '../resources.js';
import type { Informer } from '../../runtime/informer.js';
import type { ImageObject } from './resource.js';

/** Names of the VMs in the image's namespace whose disks name it. */
export function imageUsers(image: ImageObject, vms: Informer<VmObject>): string[] {
  const { namespace, name } = image.metadata;
  return vms
    .list()
    .filter(
      (vm) =>
        vm.metadata.namespace === namespace && (vm.spec.disks ?? []).some((disk) => disk.source.image?.name === name),
    )
    .map((vm) => vm.metadata.name ?? '')
    .sort();
}

/** "VMs a, b and 3 more" for a message. */
export function namesList(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** Deletes the image's volume on each of these hosts; returns the hosts that had one. */
export async function deleteImageVolumes(
  hosts: ReadonlyArray<{ name: string; hypervisor: Hypervisor }>,
  pool: string,
  volume: string,
): Promise<string[]> {
  const deleted: string[] = [];
  for (const host of hosts) {
    try {
      if (await host.hypervisor.deleteVolume(pool, volume)) deleted.push(host.name);
    } catch (error) {
      if (!isHypervisorError(error, 'not-found')) throw error; // no such pool: no volume
    }
  }
  return deleted;
}
