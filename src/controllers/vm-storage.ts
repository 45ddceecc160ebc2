// The volumes of a VirtualMachine's disks on its host: one volume per spec.disks[] entry, in the
// HostPool's storage pool (spec.storage.pool; a directory pool at spec.storage.path is made when
// the host has none), named after the domain and the disk. Made before the domain is defined:
//
//   blank  → an empty qcow2 volume of spec.disks[].size
//   clone  → a copy of source.clone.volume (in source.clone.pool, else the HostPool's pool),
//            grown to size when that is larger
//   image  → downloaded by the controller (streamed to a private temp file), then uploaded to
//            a new volume by the binding, off the JavaScript thread. This runs in the background:
//            reconciles only look at the job (kept in memory by VM UID + disk), report its
//            progress at most every progressIntervalMs, and come back later.
//
// Identity rests on the host: a volume that exists is used. The one exception is an image
// volume this process did not finish: after a controller restart, an image volume that the
// domain's definition does not use yet may be a half-written upload, so it is made again.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostPoolSpec } from '../api/hostpool.js';
import type { Disk } from '../api/virtualmachine.js';
import { quantityToNumber } from '../api/quantity.js';
import type { DiskBacking } from '../hypervisors/domain-xml.js';
import { domainName } from '../hypervisors/domain-name.js';
import { isHypervisorError, type Hypervisor, type VolumeFormat, type VolumeStatus } from '../hypervisors/hypervisor.js';
import { childrenNamed, child, parseXml } from '../hypervisors/xml.js';
import { downloadToFile } from './download.js';
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

interface ImageJob {
  url: string;
  state: 'downloading' | 'uploading' | 'done' | 'failed';
  received: number;
  total: number | undefined;
  error: string | undefined;
  /** The progress message last shown, and when it was made. */
  shown: { at: number; message: string } | undefined;
  abort: AbortController;
  finished: Promise<void>;
}

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
}

const MAX_IMAGE_RETRY_MS = 10 * 60_000;

export class DiskProvisioner {
  /** By `${uid}/${disk}`: image downloads and uploads of this process. */
  private readonly jobs = new Map<string, ImageJob>();
  /** By `${uid}/${disk}`: image volumes known to be complete. */
  private readonly complete = new Set<string>();
  /**
   * By `${uid}/${disk}`: image jobs that failed, and when to try again. The delay doubles with
   * each failure in a row (retryMs, 2×, 4×… at most 10 min): every attempt downloads the whole
   * image again, and a reconcile for another reason must not start one early.
   */
  private readonly imageFailures = new Map<
    string,
    {
      count: number;
      retryAt: number;
      delayMs: number;
      reason: 'ImageDownloadFailed' | 'ProvisioningFailed';
      message: string;
    }
  >();
  /** `${uri} ${pool}`: storage pools made sure of by this process. */
  private readonly pools = new Set<string>();
  private readonly progressIntervalMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(private readonly options: DiskProvisionerOptions = {}) {
    this.progressIntervalMs = options.progressIntervalMs ?? 5_000;
    this.retryMs = options.retryMs ?? 30_000;
    this.now = options.now ?? Date.now;
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
        const outcome = await this.provisionDisk(vm, disk, storage, hypervisor);
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
  async cancel(uid: string): Promise<void> {
    const prefix = `${uid}/`;
    const ending: Promise<void>[] = [];
    for (const [key, job] of this.jobs) {
      if (!key.startsWith(prefix)) continue;
      job.abort.abort();
      ending.push(job.finished);
      this.jobs.delete(key);
    }
    for (const key of this.complete) if (key.startsWith(prefix)) this.complete.delete(key);
    for (const key of this.imageFailures.keys()) if (key.startsWith(prefix)) this.imageFailures.delete(key);
    await Promise.all(ending);
  }

  /** Jobs under way (for tests and metrics). */
  activeJobs(): number {
    return [...this.jobs.values()].filter((job) => job.state === 'downloading' || job.state === 'uploading').length;
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
  ): Promise<
    | { state: 'ready'; volume: VolumeStatus; created: boolean }
    | { state: 'pending'; message: string }
    | {
        state: 'failed';
        reason: 'ProvisioningFailed' | 'ImageDownloadFailed';
        field?: string;
        message: string;
        retryInMs?: number;
        retryDelayMs?: number;
      }
  > {
    const uid = vm.metadata.uid ?? '';
    const name = volumeNameOf(vm, disk.name);
    const key = `${uid}/${disk.name}`;
    const size = disk.size === undefined ? undefined : quantityToNumber(disk.size);
    const source = disk.source;

    if (source.image) {
      const job = this.jobs.get(key);
      if (job && job.state !== 'done') return this.observeJob(key, job);
      if (job) {
        this.jobs.delete(key);
        this.imageFailures.delete(key);
        this.complete.add(key);
      }
      const failure = this.imageFailures.get(key);
      if (failure && failure.retryAt > this.now()) {
        return {
          state: 'failed',
          reason: failure.reason,
          field: 'source.image.url',
          message: failure.message,
          retryInMs: failure.retryAt - this.now(),
          retryDelayMs: failure.delayMs,
        };
      }
      const existing = await hypervisor.volume(storage.pool, name);
      if (existing) {
        if (this.complete.has(key) || (await domainUses(hypervisor, uid, existing.path))) {
          this.complete.add(key);
          return { state: 'ready', volume: existing, created: false };
        }
        // Not made by this process and not in the domain yet: maybe a half-done upload.
        await hypervisor.deleteVolume(storage.pool, name);
      }
      this.startImageJob(key, uid, source.image.url, storage.pool, name, size, hypervisor);
      return this.observeJob(key, this.jobs.get(key)!);
    }

    const existing = await hypervisor.volume(storage.pool, name);
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

  private observeJob(
    key: string,
    job: ImageJob,
  ):
    | { state: 'pending'; message: string }
    | {
        state: 'failed';
        reason: 'ImageDownloadFailed' | 'ProvisioningFailed';
        field?: string;
        message: string;
        retryInMs: number;
        retryDelayMs: number;
      } {
    if (job.state === 'failed') {
      // Remembered with its retry time; the first reconcile after it starts afresh.
      this.jobs.delete(key);
      const reason = job.error?.startsWith('upload') ? 'ProvisioningFailed' : 'ImageDownloadFailed';
      const message = `image ${job.url}: ${job.error ?? 'failed'}`;
      const count = (this.imageFailures.get(key)?.count ?? 0) + 1;
      const retryInMs = Math.min(this.retryMs * 2 ** (count - 1), MAX_IMAGE_RETRY_MS);
      this.imageFailures.set(key, { count, retryAt: this.now() + retryInMs, delayMs: retryInMs, reason, message });
      return { state: 'failed', reason, field: 'source.image.url', message, retryInMs, retryDelayMs: retryInMs };
    }
    const now = this.now();
    if (!job.shown || now - job.shown.at >= this.progressIntervalMs)
      job.shown = { at: now, message: progressMessage(job) };
    return { state: 'pending', message: job.shown.message };
  }

  private startImageJob(
    key: string,
    uid: string,
    url: string,
    pool: string,
    name: string,
    size: number | undefined,
    hypervisor: Hypervisor,
  ): void {
    const abort = new AbortController();
    const job: ImageJob = {
      url,
      state: 'downloading',
      received: 0,
      total: undefined,
      error: undefined,
      shown: undefined,
      abort,
      finished: Promise.resolve(),
    };
    job.finished = this.runImageJob(job, pool, name, size, hypervisor)
      .then(
        () => {
          job.state = 'done';
        },
        (error: unknown) => {
          job.state = 'failed';
          job.error = errorText(error);
        },
      )
      .finally(() => {
        if (!abort.signal.aborted) this.options.onJobEnd?.(uid);
      });
    this.jobs.set(key, job);
  }

  private async runImageJob(
    job: ImageJob,
    pool: string,
    name: string,
    size: number | undefined,
    hypervisor: Hypervisor,
  ): Promise<void> {
    // mkdtemp makes the directory 0700; the file inside is 0600.
    const dir = await mkdtemp(join(this.options.tmpDir ?? tmpdir(), 'virtfleet-image-'));
    try {
      const file = join(dir, 'image');
      await downloadToFile(job.url, file, job, job.abort.signal);
      const image = await imageFacts(file);
      job.state = 'uploading';
      if (job.abort.signal.aborted) throw new Error('cancelled');
      const capacityBytes = Math.max(size ?? 0, image.virtualSize);
      try {
        await hypervisor.createVolume(pool, { name, format: image.format, capacityBytes });
      } catch (error) {
        if (!isHypervisorError(error, 'already-exists'))
          throw new Error(`upload: ${errorText(error)}`, { cause: error });
        await hypervisor.deleteVolume(pool, name);
        await hypervisor.createVolume(pool, { name, format: image.format, capacityBytes });
      }
      try {
        await hypervisor.uploadVolume(pool, name, file);
        // A qcow2 upload brings its own virtual size; grow it to the disk's size.
        if (size !== undefined && size > image.virtualSize && image.format === 'qcow2')
          await hypervisor.resizeVolume(pool, name, size);
      } catch (error) {
        // A volume that is not complete must not be taken for the disk.
        await hypervisor.deleteVolume(pool, name).catch(() => false);
        throw new Error(`upload: ${errorText(error)}`, { cause: error });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** qcow2 (by its magic, with the virtual size from its header) or raw (its length). */
export async function imageFacts(file: string): Promise<{ format: VolumeFormat; virtualSize: number }> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(32);
    const { bytesRead } = await handle.read(header, 0, 32, 0);
    const { size } = await handle.stat();
    if (bytesRead >= 32 && header.readUInt32BE(0) === 0x514649fb)
      return { format: 'qcow2', virtualSize: Number(header.readBigUInt64BE(24)) };
    return { format: 'raw', virtualSize: size };
  } finally {
    await handle.close();
  }
}

function progressMessage(job: ImageJob): string {
  if (job.received === 0 && job.total === undefined) return `downloading image ${job.url}: starting`;
  if (job.state === 'uploading') return `uploading image ${job.url} (${mib(job.received)}) to the host`;
  const total =
    job.total === undefined ? '' : ` of ${mib(job.total)} (${Math.floor((job.received / job.total) * 100)}%)`;
  return `downloading image ${job.url}: ${mib(job.received)}${total}`;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Whether the domain's persistent definition has a disk on `path`. */
async function domainUses(hypervisor: Hypervisor, uid: string, path: string): Promise<boolean> {
  if (!(await hypervisor.lookup(uid))) return false;
  const domain = parseXml(await hypervisor.xml(uid, { inactive: true }));
  const devices = child(domain, 'devices');
  return (devices ? childrenNamed(devices, 'disk') : []).some((disk) => child(disk, 'source')?.attrs.file === path);
}
