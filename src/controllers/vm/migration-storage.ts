// What a live migration does with the VM's disks, decided before it starts from the domain as it
// runs (its live XML) and the HostPool's spec.storage:
//
//   None    the domain has no disk or CD-ROM file;
//   Shared  spec.storage.shared: the destination sees the same files, nothing is copied;
//   Copied  a host-local pool: the destination's volumes are made first (same pool, name,
//           capacity and format; libvirt's storage copy needs a file at the same path), then
//           libvirt copies the writable disks while the guest runs (copyStorage 'all'). libvirt
//           does not copy read-only media, so the VM's own small read-only volumes (the
//           cloud-init seed) are copied by the controller beforehand.
//
// Refused before anything is made or copied, with the cause and the fix: a host device, a disk
// or CD-ROM file that is not a volume of the VM in the pool, a destination without the pool (or
// with it over another directory), a destination pool without room for the copies.
import { isHypervisorError, type Hypervisor, type VolumeFormat } from '../../hypervisors/hypervisor.js';
import { child, childrenNamed, parseXml } from '../../hypervisors/xml.js';
import { errorText } from '../error-text.js';
import type { VmObject } from '../resources.js';
import { volumeNameOf, type StorageSpec } from '../vm-storage.js';
import { CLOUD_INIT_SEED } from './cloud-init.js';

export type StorageMode = 'None' | 'Shared' | 'Copied';

/** A read-only volume the controller copies itself is at most this big (the seed is a few KiB). */
export const MAX_CONTROLLER_COPY_BYTES = 16 * 2 ** 20;

/** One disk or CD-ROM file of the running domain. */
export interface DomainFile {
  /** Guest device (vda, sda…). */
  target: string;
  device: string;
  file: string;
  readOnly: boolean;
}

/** The files and host devices of a domain's live XML. */
export function domainStorage(xml: string): { files: DomainFile[]; hostDevices: string[] } {
  const devices = child(parseXml(xml), 'devices');
  if (!devices) return { files: [], hostDevices: [] };
  const files: DomainFile[] = [];
  for (const disk of childrenNamed(devices, 'disk')) {
    const source = child(disk, 'source');
    const file = source?.attrs.file ?? source?.attrs.dev ?? source?.attrs.volume;
    if (!file) continue; // an empty CD-ROM drive
    const device = disk.attrs.device ?? 'disk';
    files.push({
      target: child(disk, 'target')?.attrs.dev ?? '?',
      device,
      file,
      readOnly: device === 'cdrom' || child(disk, 'readonly') !== undefined,
    });
  }
  const hostDevices = childrenNamed(devices, 'hostdev').map((hostdev) => {
    const address = child(hostdev, 'source', 'address')?.attrs ?? {};
    const where = Object.entries(address)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
    return `${hostdev.attrs.type ?? 'hostdev'}${where ? ` (${where})` : ''}`;
  });
  return { files, hostDevices };
}

/** A volume the destination gets before the migration. */
export interface PlannedVolume {
  /** spec.disks[].name, or `cloud-init` for the seed. */
  disk: string;
  volume: string;
  format: VolumeFormat;
  capacityBytes: number;
  /** What it takes on the destination (the source's allocation). */
  bytes: number;
  /** Read-only: copied by the controller, not by libvirt. */
  readOnly: boolean;
}

export type StoragePlan =
  | { ok: true; storage: 'None' | 'Shared' }
  | { ok: true; storage: 'Copied'; pool: string; volumes: PlannedVolume[] }
  | { ok: false; message: string };

export interface PlanInput {
  vm: VmObject;
  storage: StorageSpec;
  /** The domain's live XML on the source. */
  xml: string;
  source: { name: string; hypervisor: Hypervisor };
  destination: { name: string; hypervisor: Hypervisor };
}

/** Decides how the disks move, or why they cannot; touches nothing on either host. */
export async function planStorage({ vm, storage, xml, source, destination }: PlanInput): Promise<StoragePlan> {
  const { files, hostDevices } = domainStorage(xml);
  if (hostDevices.length > 0)
    return {
      ok: false,
      message:
        `host device${hostDevices.length > 1 ? 's' : ''} ${hostDevices.join(', ')} attached to the domain on ${source.name}: ` +
        'a host device cannot move with a live migration; detach it, or stop the VM to move it',
    };
  if (files.length === 0) return { ok: true, storage: 'None' };
  const pool = storage.pool;
  const sourceDir = await source.hypervisor.storagePoolPath(pool).catch(() => undefined);
  const inPool = (file: string) =>
    sourceDir !== undefined &&
    file.startsWith(`${sourceDir.replace(/\/+$/, '')}/`) &&
    !file.slice(sourceDir.length + 1).includes('/');
  const outside = files.filter((f) => !inPool(f.file));
  if (outside.length > 0) {
    const what = outside.map((f) => `${f.device === 'cdrom' ? 'CD-ROM' : 'disk'} ${f.target} (${f.file})`).join(', ');
    return {
      ok: false,
      message:
        `${what} on ${source.name} is not in the HostPool's storage pool ${pool}` +
        (storage.shared ? '' : ', and the pool is host-local') +
        `: ${destination.name} may not have that file; eject or detach it, or stop the VM to move it`,
    };
  }
  if (storage.shared) return { ok: true, storage: 'Shared' };

  const names = new Map<string, string>(
    [...(vm.spec.disks ?? []).map((d) => d.name), CLOUD_INIT_SEED].map((disk) => [volumeNameOf(vm, disk), disk]),
  );
  const volumes: PlannedVolume[] = [];
  for (const f of files) {
    const name = f.file.slice(f.file.lastIndexOf('/') + 1);
    const disk = names.get(name);
    const volume = disk ? await source.hypervisor.volume(pool, name) : undefined;
    if (!disk || !volume)
      return {
        ok: false,
        message: `${f.device === 'cdrom' ? 'CD-ROM' : 'disk'} ${f.target} (${f.file}) on ${source.name} is not a volume of this VM in the host-local storage pool ${pool}: it cannot be copied; detach it, or stop the VM to move it`,
      };
    const format: VolumeFormat = volume.format === 'qcow2' ? 'qcow2' : 'raw';
    if (f.readOnly && volume.allocationBytes > MAX_CONTROLLER_COPY_BYTES)
      return {
        ok: false,
        message: `read-only ${f.device === 'cdrom' ? 'CD-ROM' : 'disk'} ${f.target} (${name}, ${volume.allocationBytes} bytes) on host-local storage: libvirt's storage copy skips read-only media and it is too big for the controller to copy; put the pool on shared storage (HostPool spec.storage.shared), or stop the VM to move it`,
      };
    volumes.push({
      disk: disk === CLOUD_INIT_SEED ? 'cloud-init' : disk,
      volume: name,
      format,
      capacityBytes: volume.capacityBytes,
      bytes: volume.allocationBytes,
      readOnly: f.readOnly,
    });
  }

  let available: number;
  try {
    available = (await destination.hypervisor.ensureStoragePool({ name: pool, path: storage.path })).availableBytes;
  } catch (error) {
    if (!isHypervisorError(error, 'not-found')) throw error;
    return {
      ok: false,
      message: `host ${destination.name} has no storage pool ${pool} to copy the disks into, and HostPool spec.storage.path is unset so it cannot be made: define pool ${pool} on ${destination.name}, or set spec.storage.path`,
    };
  }
  const destinationDir = await destination.hypervisor.storagePoolPath(pool);
  if (destinationDir !== sourceDir)
    return {
      ok: false,
      message: `storage pool ${pool} is over ${sourceDir} on ${source.name} but over ${destinationDir} on ${destination.name}: a storage copy needs the same directory on both; give the pool the same path on every host`,
    };
  for (const planned of volumes) {
    if (await destination.hypervisor.volume(pool, planned.volume))
      return {
        ok: false,
        message: `volume ${planned.volume} already exists in storage pool ${pool} on ${destination.name} (a retained disk of an earlier VM of this name, or a leftover): it is not overwritten; delete it there (virsh vol-delete --pool ${pool} ${planned.volume}) to let the VM move`,
      };
  }
  const needed = volumes.reduce((sum, v) => sum + v.bytes, 0);
  if (needed > available)
    return {
      ok: false,
      message: `storage pool ${pool} on ${destination.name} has ${available} bytes free, the copies need ${needed} (the disks' allocation on ${source.name}): short by ${needed - available} bytes; free space in pool ${pool} on ${destination.name}, or move the VM where there is room (virtfleet vm migrate --to)`,
    };
  return { ok: true, storage: 'Copied', pool, volumes };
}

/**
 * Makes the plan's volumes on the destination (read-only ones with their content); on a failure,
 * removes those made and rethrows. Returns the names made.
 */
export async function prepareDestination(
  plan: Extract<StoragePlan, { storage: 'Copied' }>,
  source: Hypervisor,
  destination: Hypervisor,
): Promise<string[]> {
  const made: string[] = [];
  try {
    for (const v of plan.volumes) {
      await destination.createVolume(plan.pool, { name: v.volume, format: v.format, capacityBytes: v.capacityBytes });
      made.push(v.volume);
      if (v.readOnly) {
        const content = await source.downloadVolume(plan.pool, v.volume, MAX_CONTROLLER_COPY_BYTES);
        await destination.uploadVolume(plan.pool, v.volume, content);
      }
    }
    return made;
  } catch (error) {
    await removeVolumes(destination, plan.pool, made).catch(() => undefined);
    throw new Error(`cannot make the disks' volumes on the destination: ${errorText(error)}`, { cause: error });
  }
}

/** Deletes the volumes; returns those it could not delete, with why. */
export async function removeVolumes(hypervisor: Hypervisor, pool: string, names: string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const name of names) {
    try {
      await hypervisor.deleteVolume(pool, name);
    } catch (error) {
      failed.push(`${name}: ${errorText(error)}`);
    }
  }
  return failed;
}

/** How long a failed migration's settle waits for the destination to drop the incoming domain. */
export const INCOMING_GONE_WAIT_MS = 60_000;

/**
 * After the migration call ended: the copies the VM no longer uses go. Only from a host the
 * domain is provably not on (looked up there), so a migration that ended otherwise than its
 * call said never loses the disks the VM runs on. Returns what was done, for the Event.
 *
 * `waitMs`: after a failure, how long to wait for the destination to drop a domain that does
 * not run there (the incoming one: when the source was cut off, libvirt there ends it only once
 * its keepalive with the source gives up, about 30 s); 0 looks once.
 */
export async function settleCopies(
  uid: string,
  pool: string,
  volumes: string[],
  ok: boolean,
  source: { name: string; hypervisor: Hypervisor },
  destination: { name: string; hypervisor: Hypervisor },
  waitMs = 0,
): Promise<string> {
  // Success: the source's volumes are stale; failure: the destination's are half-copied.
  const side = ok ? source : destination;
  const what = ok ? 'the source' : 'the destination';
  for (const deadline = Date.now() + (ok ? 0 : waitMs); ;) {
    let domain: Awaited<ReturnType<Hypervisor['lookup']>>;
    try {
      domain = await side.hypervisor.lookup(uid);
    } catch (error) {
      return `cannot tell whether the domain is on ${side.name} (${errorText(error)}): its volumes there are kept`;
    }
    if (!domain) break;
    // A copy that runs there is the VM's (the migration went through after all): kept.
    if (domain.state === 'running' || domain.state === 'blocked' || Date.now() >= deadline)
      return `the domain is still on ${side.name} (${domain.state}/${domain.reason}): its volumes there are kept`;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const failed = await removeVolumes(side.hypervisor, pool, volumes);
  if (failed.length > 0) return `cannot remove the volumes on ${what} ${side.name}: ${failed.join('; ')}`;
  return `volumes ${volumes.join(', ')} removed from ${side.name}${ok ? '' : ' (half-copied)'}`;
}

/** The volumes a VM's copied migration may have made: one per spec.disks entry, and the cloud-init seed. */
export function vmVolumeNames(vm: VmObject): string[] {
  const disks = (vm.spec.disks ?? []).map((disk) => disk.name);
  return [...disks, ...(vm.spec.cloudInit ? [CLOUD_INIT_SEED] : [])].map((disk) => volumeNameOf(vm, disk));
}
