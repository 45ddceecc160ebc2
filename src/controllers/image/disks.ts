// VM disks from a VirtualMachineImage (spec.disks[].source.image.name), made by the VM
// controller's disks step (vm-storage.ts): a linked clone, i.e. a qcow2 overlay whose backing
// store is the image's volume on the host (nothing copied; the image's volume must outlive it,
// which the image's finalizer sees to), or with copy: true a full copy made by the host. Either
// is grown to the disk's size when that is larger than the image. A disk of type cdrom is the
// image's own volume (an ISO), attached read-only.
import type { Disk } from '../../api/virtualmachine.js';
import type { HostImageStatus } from '../../api/virtualmachineimage.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import type { VmObject } from '../resources.js';
import type { DiskOutcome } from '../vm-image-upload.js';
import type { ImageObject } from './resource.js';

/** The image of that name in that namespace, from the cache. */
export type ImageLookup = (namespace: string, name: string) => ImageObject | undefined;

export async function diskFromImage(
  vm: VmObject,
  disk: Disk,
  target: { pool: string; name: string; size: number | undefined; host: string },
  hypervisor: Hypervisor,
  lookup: ImageLookup | undefined,
): Promise<DiskOutcome> {
  const field = 'source.image.name';
  const imageName = disk.source.image?.name ?? '';
  const namespace = vm.metadata.namespace ?? '';
  const failed = (message: string): DiskOutcome => ({ state: 'failed', reason: 'ProvisioningFailed', field, message });
  const image = lookup?.(namespace, imageName);
  if (!image)
    return failed(`no VirtualMachineImage ${imageName} in namespace ${namespace}: create it, or fix the name`);
  if (image.spec.hostPoolRef.name !== vm.spec.hostPoolRef.name)
    return failed(
      `VirtualMachineImage ${imageName} is imported into HostPool ${image.spec.hostPoolRef.name}, not the VM's ${vm.spec.hostPoolRef.name}: use an image of that pool`,
    );

  const cdrom = disk.type === 'cdrom';
  if (!cdrom) {
    const existing = await hypervisor.volume(target.pool, target.name);
    if (existing) return { state: 'ready', volume: existing, created: false };
  }

  const status = image.status;
  const entry: HostImageStatus | undefined = status?.shared
    ? status.hosts?.[0]
    : status?.hosts?.find((host) => host.name === target.host);
  if (
    !status ||
    status.observedGeneration !== image.metadata.generation ||
    entry?.phase !== 'Ready' ||
    !entry.path ||
    !entry.volume
  )
    return {
      state: 'pending',
      message: `waiting for VirtualMachineImage ${imageName} on host ${target.host}: ${entry?.phase ?? status?.phase ?? 'Pending'}${entry?.progress ? ` (${entry.progress})` : ''}`,
    };
  if (cdrom) return cdromFromImage(imageName, status.format, entry, hypervisor, failed);
  if (status.format === 'iso')
    return failed(
      `VirtualMachineImage ${imageName} is an ISO image; a disk needs a qcow2 or raw image: for the ISO, add a disk with type: cdrom`,
    );
  const capacityBytes = Math.max(target.size ?? 0, status.sizeBytes ?? 0);
  if (disk.source.image?.copy) {
    const volume = await hypervisor.cloneVolume(
      target.pool,
      { name: target.name, format: 'qcow2', capacityBytes },
      { pool: entry.pool ?? target.pool, name: entry.volume },
    );
    // libvirt's copy of a qcow2 (qemu-img convert) keeps the source's virtual size: grow it.
    if (volume.capacityBytes >= capacityBytes) return { state: 'ready', volume, created: true };
    await hypervisor.resizeVolume(target.pool, target.name, capacityBytes);
    const grown = await hypervisor.volume(target.pool, target.name);
    return { state: 'ready', volume: grown ?? volume, created: true };
  }
  const volume = await hypervisor.createVolume(target.pool, {
    name: target.name,
    format: 'qcow2',
    capacityBytes,
    backingStore: { path: entry.path, format: status.format === 'qcow2' ? 'qcow2' : 'raw' },
  });
  return { state: 'ready', volume, created: true };
}

/**
 * A CD-ROM is the image's own volume, attached read-only: nothing is made for the VM, and its
 * deletion deletes nothing of the image (the VM's volumes are found by their own names).
 */
async function cdromFromImage(
  imageName: string,
  format: string | undefined,
  entry: HostImageStatus,
  hypervisor: Hypervisor,
  failed: (message: string) => DiskOutcome,
): Promise<DiskOutcome> {
  if (format !== 'iso')
    return failed(
      `VirtualMachineImage ${imageName} is ${format ?? 'of no known format'}, not an ISO 9660 image: a cdrom shows an ISO; remove type: cdrom to use it as a disk`,
    );
  const volume = await hypervisor.volume(entry.pool ?? '', entry.volume ?? '');
  if (!volume)
    return {
      state: 'pending',
      message: `waiting for VirtualMachineImage ${imageName}: its volume ${entry.volume} is not in pool ${entry.pool} on host ${entry.name}`,
    };
  return { state: 'ready', volume: { ...volume, format: 'raw' }, created: false };
}
