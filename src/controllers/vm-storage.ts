// The volumes of a VirtualMachine's disks on its host: one volume per spec.disks[] entry, in the
// HostPool's storage pool (spec.storage.pool; a directory pool at spec.storage.path is made when
// the host has none), named after the domain and the disk. Made before the domain is defined:
//
//   blank  → an empty qcow2 volume of spec.disks[].size
//   clone  → a copy of source.clone.volume (in source.clone.pool, else the HostPool's pool),
//            grown to size when that is larger
//   image  → url: downloaded and uploaded in the background (vm-image-upload.ts); name: a
//            linked clone (or copy) of a VirtualMachineImage's volume (image/disks.ts)
//
// Identity rests on the host: a volume that exists is used. The one exception is an image
// volume this process did not finish (vm-image-upload.ts says why).
import type { HostPoolSpec } from '../api/hostpool.js';
import type { Disk } from '../api/virtualmachine.js';
import { quantityToNumber } from '../api/quantity.js';
import type { DiskBacking } from '../hypervisors/domain-xml.js';
import { domainName } from '../hypervisors/domain-name.js';
import { isHypervisorError, type Hypervisor } from '../hypervisors/hypervisor.js';
import { ImageUploads, type DiskOutcome } from './vm-image-upload.js';
import { diskFromImage, type ImageLookup } from './image/disks.js';
import type { VmObject } from './resources.js';
import { errorText } from './error-text.js';

export type StorageSpec = HostPoolSpec['storage'];

/**
 * The volume of disk `disk` of the domain named `domain`. `_` occurs in neither a namespace, a
 * VM name nor a disk name, and a domain name never ends in one, so the last `_` splits the
 * volume name back into the two: different (domain, disk) pairs never share a volume.
 */
export function volumeName(domain: string, disk: string): string {
  return `${domain}_${disk}`;
}

export function volumeNameOf(vm: VmObject, disk: string): string {
  const { namespace = '', name = '', uid = '' } = vm.metadata;
  return volumeName(domainName(namespace, name, uid), disk);
}

/** What became of the VM's disks in one reconcile. */
export type ProvisionResult =
  | { state: 'ready'; disks: Record<string, DiskBacking>; created: string[] }
  /** An image is still being downloaded or uploaded; look again later. */
  | { state: 'pending'; message: string; requeueAfterMs: number }
  /** A disk cannot be made now (its field and the host are in the message); retried later. */
  | {
      state: 'failed';
      reason: 'ProvisioningFailed' | 'ImageDownloadFailed';
      message: string;
      requeueAfterMs: number;
      /** The delay before the retry, from the failure (the message's "retrying in"; stable across reconciles). */
      retryDelayMs: number;
    };

export interface DiskProvisionerOptions {
  /** Shortest time between two progress messages of one download. Default 5 s. */
  progressIntervalMs?: number;
  /** When to try again after a failure. Default 30 s. */
  retryMs?: number;
  /** Called (with the VM's UID) when an image job ends, so the VM is reconciled at once. */
  onJobEnd?: (uid: string) => void;
  /** Where downloads go (a private directory is made inside for each); default os.tmpdir(). */
  tmpDir?: string;
  now?: () => number;
  /** VirtualMachineImages, for disks with source.image.name; without it such disks fail. */
  images?: ImageLookup;
}

export class DiskProvisioner {
  /** `${uri} ${pool}`: storage pools made sure of by this process. */
  private readonly pools = new Set<string>();
  private readonly progressIntervalMs: number;
  private readonly retryMs: number;
  private readonly images: ImageUploads;
  private readonly imageLookup: ImageLookup | undefined;

  constructor(options: DiskProvisionerOptions = {}) {
    this.progressIntervalMs = options.progressIntervalMs ?? 5_000;
    this.retryMs = options.retryMs ?? 30_000;
    this.imageLookup = options.images;
    this.images = new ImageUploads({
      progressIntervalMs: this.progressIntervalMs,
      retryMs: this.retryMs,
      onJobEnd: options.onJobEnd,
      tmpDir: options.tmpDir,
      now: options.now ?? Date.now,
    });
  }

  /**
   * Makes (or finds) a volume for every disk of the VM. Rejects only with HypervisorErrors of
   * kind 'unreachable' (the caller's host-unreachable path); other failures are results.
   */
  async provision(
    vm: VmObject,
    storage: StorageSpec,
    hostName: string,
    hypervisor: Hypervisor,
  ): Promise<ProvisionResult> {
    const disks = vm.spec.disks ?? [];
    if (disks.length === 0) return { state: 'ready', disks: {}, created: [] };
    const failed = (
      reason: 'ProvisioningFailed' | 'ImageDownloadFailed',
      message: string,
      retryInMs = this.retryMs,
      retryDelayMs = retryInMs,
    ): ProvisionResult => ({
      state: 'failed',
      reason,
      message,
      requeueAfterMs: retryInMs,
      retryDelayMs,
    });
    try {
      await this.ensurePool(storage, hypervisor);
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return failed(
        'ProvisioningFailed',
        `HostPool spec.storage.pool ${storage.pool}: cannot use it on host ${hostName}: ${errorText(error)}`,
      );
    }
    const backings: Record<string, DiskBacking> = {};
    const created: string[] = [];
    const pending: string[] = [];
    for (const [index, disk] of disks.entries()) {
      const field = `spec.disks[${index}] (${disk.name})`;
      try {
        const outcome = await this.provisionDisk(vm, disk, storage, hypervisor, hostName);
        if (outcome.state === 'ready') {
          backings[disk.name] = {
            path: outcome.volume.path,
            format: outcome.volume.format === 'unknown' ? 'raw' : outcome.volume.format,
          };
          if (outcome.created) created.push(disk.name);
        } else if (outcome.state === 'pending') {
          pending.push(`${field}: ${outcome.message}`);
        } else {
          return failed(
            outcome.reason,
            `${field}${outcome.field ? `.${outcome.field}` : ''}: ${outcome.message} (host ${hostName})`,
            outcome.retryInMs,
            outcome.retryDelayMs,
          );
        }
      } catch (error) {
        if (isHypervisorError(error, 'unreachable')) throw error;
        return failed('ProvisioningFailed', `${field}: ${errorText(error)} (host ${hostName})`);
      }
    }
    if (pending.length > 0)
      return { state: 'pending', message: pending.join('; '), requeueAfterMs: this.progressIntervalMs };
    return { state: 'ready', disks: backings, created };
  }

  /** Deletes the volumes of the VM's disks; returns the names of those that existed. */
  /**
   * Deletes the volumes of the VM's disks, except those with `retain` (kept, and used again by
   * a VM of the same namespace, name and disk name, since a volume that exists is used).
   */
  async remove(
    vm: VmObject,
    storage: StorageSpec,
    hypervisor: Hypervisor,
  ): Promise<{ deleted: string[]; retained: string[] }> {
    const uid = vm.metadata.uid ?? '';
    await this.cancel(uid);
    const deleted: string[] = [];
    const retained: string[] = [];
    for (const disk of vm.spec.disks ?? []) {
      const name = volumeNameOf(vm, disk.name);
      if (disk.retain) {
        retained.push(name);
        continue;
      }
      try {
        if (await hypervisor.deleteVolume(storage.pool, name)) deleted.push(name);
      } catch (error) {
        if (!isHypervisorError(error, 'not-found')) throw error; // no such pool: nothing to delete
      }
    }
    return { deleted, retained };
  }

  /** Stops the VM's downloads and uploads, and forgets them. */
  cancel(uid: string): Promise<void> {
    return this.images.cancel(uid);
  }

  /** Jobs under way (for tests and metrics). */
  activeJobs(): number {
    return this.images.activeJobs();
  }

  private async ensurePool(storage: StorageSpec, hypervisor: Hypervisor): Promise<void> {
    const key = `${hypervisor.uri} ${storage.pool}`;
    if (this.pools.has(key)) return;
    const status = await hypervisor.ensureStoragePool({
      name: storage.pool,
      ...(storage.path ? { path: storage.path } : {}),
    });
    if (!status.active) throw new Error(`storage pool ${storage.pool} is not active`);
    this.pools.add(key);
  }

  private async provisionDisk(
    vm: VmObject,
    disk: Disk,
    storage: StorageSpec,
    hypervisor: Hypervisor,
    hostName: string,
  ): Promise<DiskOutcome> {
    const uid = vm.metadata.uid ?? '';
    const name = volumeNameOf(vm, disk.name);
    const size = disk.size === undefined ? undefined : quantityToNumber(disk.size);
    const source = disk.source;

    if (source.image?.name !== undefined)
      return diskFromImage(vm, disk, { pool: storage.pool, name, size, host: hostName }, hypervisor, this.imageLookup);
    if (source.image?.url !== undefined) {
      const target = { key: `${uid}/${disk.name}`, uid, url: source.image.url, pool: storage.pool, name, size };
      return this.images.provision(target, hypervisor);
    }

    let existing = await hypervisor.volume(storage.pool, name);
    // Shared storage: the volume may have been made by another host (the VM's host before a
    // recovery or migration) after this host's libvirt last listed the pool.
    if (!existing && storage.shared) {
      await hypervisor.refreshStoragePool(storage.pool);
      existing = await hypervisor.volume(storage.pool, name);
    }
    if (existing) return { state: 'ready', volume: existing, created: false };

    if (source.clone) {
      const fromPool = source.clone.pool ?? storage.pool;
      const from = await hypervisor.volume(fromPool, source.clone.volume).catch((error: unknown) => {
        if (isHypervisorError(error, 'not-found')) return undefined; // no such pool
        throw error;
      });
      if (!from) {
        return {
          state: 'failed',
          reason: 'ProvisioningFailed',
          field: 'source.clone.volume',
          message: `no volume ${source.clone.volume} in storage pool ${fromPool} to clone`,
        };
      }
      const capacityBytes = Math.max(size ?? 0, from.capacityBytes);
      const volume = await hypervisor.cloneVolume(
        storage.pool,
        { name, format: 'qcow2', capacityBytes },
        { pool: fromPool, name: from.name },
      );
      return { state: 'ready', volume, created: true };
    }

    // blank (the API requires a size for it)
    if (size === undefined)
      return { state: 'failed', reason: 'ProvisioningFailed', field: 'size', message: 'a blank disk needs a size' };
    const volume = await hypervisor.createVolume(storage.pool, { name, format: 'qcow2', capacityBytes: size });
    return { state: 'ready', volume, created: true };
  }
}
