// Image disks (spec.disks[].source.image): downloaded by the controller (streamed to a private
// temp file), then uploaded to a new volume by the binding, off the JavaScript thread. This runs
// in the background: reconciles only look at the job (kept in memory by VM UID + disk), report
// its progress at most every progressIntervalMs, and come back later. A failed job is retried
// after a delay that doubles with each failure in a row (retryMs, 2×, 4×… at most 10 min).
//
// After a controller restart, an image volume that the domain's definition does not use yet may
// be a half-written upload, so it is made again (vm-storage.ts uses any other volume that exists).
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isHypervisorError, type Hypervisor, type VolumeFormat, type VolumeStatus } from '../hypervisors/hypervisor.js';
import { childrenNamed, child, parseXml } from '../hypervisors/xml.js';
import { downloadToFile } from './download.js';
import { errorText } from './error-text.js';
import { stagingDir } from './staging.js';

/** What became of one disk's volume in one reconcile. */
export type DiskOutcome =
  | { state: 'ready'; volume: VolumeStatus; created: boolean }
  | { state: 'pending'; message: string }
  | {
      state: 'failed';
      reason: 'ProvisioningFailed' | 'ImageDownloadFailed';
      field?: string;
      message: string;
      retryInMs?: number;
      retryDelayMs?: number;
    };

/** Where an image disk goes: the volume `name` in storage pool `pool`, grown to `size` bytes if given. */
export interface ImageTarget {
  /** `${uid}/${disk}`: the job's key. */
  key: string;
  uid: string;
  url: string;
  pool: string;
  name: string;
  size: number | undefined;
}

export interface ImageUploadOptions {
  progressIntervalMs: number;
  retryMs: number;
  onJobEnd: ((uid: string) => void) | undefined;
  tmpDir: string | undefined;
  now: () => number;
}

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

const MAX_IMAGE_RETRY_MS = 10 * 60_000;

export class ImageUploads {
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
  private readonly now: () => number;

  constructor(private readonly options: ImageUploadOptions) {
    this.now = options.now;
  }

  /** The image disk's volume: ready, its job under way (pending), or failed. */
  async provision(target: ImageTarget, hypervisor: Hypervisor): Promise<DiskOutcome> {
    const { key, uid, name, size } = target;
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
    const existing = await hypervisor.volume(target.pool, name);
    if (existing) {
      if (this.complete.has(key) || (await domainUses(hypervisor, uid, existing.path))) {
        this.complete.add(key);
        return { state: 'ready', volume: existing, created: false };
      }
      // Not made by this process and not in the domain yet: maybe a half-done upload.
      await hypervisor.deleteVolume(target.pool, name);
    }
    this.startImageJob(key, uid, target.url, target.pool, name, size, hypervisor);
    return this.observeJob(key, this.jobs.get(key)!);
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
      const retryInMs = Math.min(this.options.retryMs * 2 ** (count - 1), MAX_IMAGE_RETRY_MS);
      this.imageFailures.set(key, { count, retryAt: this.now() + retryInMs, delayMs: retryInMs, reason, message });
      return { state: 'failed', reason, field: 'source.image.url', message, retryInMs, retryDelayMs: retryInMs };
    }
    const now = this.now();
    if (!job.shown || now - job.shown.at >= this.options.progressIntervalMs)
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
    const dir = await mkdtemp(join(this.options.tmpDir ?? stagingDir(), 'virtfleet-image-'));
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
