// Step: import, in the background. One job per image (by UID) brings its content to the hosts
// that lack it: a URL is downloaded and checked once (fetch.ts) and uploaded to each host's pool
// by the binding, off the JavaScript thread; a pool volume is copied on each host. Reconciles
// only read a job's state. A host's volume is made only once the content is known good, and is
// deleted again when its upload fails, so no half-made volume is taken for the image.
import type { ImageFormatName, VirtualMachineImageSpec } from '../../api/virtualmachineimage.js';
import { isHypervisorError, type Hypervisor, type VolumeFormat } from '../../hypervisors/hypervisor.js';
import { errorText } from '../error-text.js';
import { fetchImage, ImageFault, type FetchedImage } from './fetch.js';
import { IMAGE_REASONS as R } from './resource.js';

/** One host (or the shared pool) to bring the image to. */
export interface ImportTarget {
  host: string;
  hypervisor: Hypervisor;
  /** The HostPool's storage pool, where the image's volume goes. */
  pool: string;
  volume: string;
}

export interface ImageFacts {
  format: ImageFormatName;
  sizeBytes: number;
  sha256?: string;
}

export type HostResult =
  | { state: 'waiting' | 'importing' }
  | { state: 'done'; path: string }
  | { state: 'failed'; reason: string; message: string };

export interface ImportJob {
  fingerprint: string;
  state: 'running' | 'done';
  /** Bytes downloaded so far, and the whole when the server said (URL sources). */
  received: number;
  total: number | undefined;
  stage: 'downloading' | 'uploading' | 'copying';
  facts: ImageFacts | undefined;
  hosts: Map<string, HostResult>;
  /** A failure of the content itself (download, checksum, format): every host failed with it. */
  fault: { reason: string; message: string } | undefined;
  abort: AbortController;
  finished: Promise<void>;
}

export class ImportJobs {
  private readonly jobs = new Map<string, ImportJob>();

  constructor(
    private readonly onEnd: (uid: string) => void,
    private readonly tmpDir?: string,
  ) {}

  get(uid: string): ImportJob | undefined {
    return this.jobs.get(uid);
  }

  /** Starts a job for these targets (a running one for the image is cancelled first). */
  async start(
    uid: string,
    fingerprint: string,
    spec: VirtualMachineImageSpec,
    targets: ImportTarget[],
  ): Promise<ImportJob> {
    await this.cancel(uid);
    const job: ImportJob = {
      fingerprint,
      state: 'running',
      received: 0,
      total: undefined,
      stage: spec.source.url ? 'downloading' : 'copying',
      facts: undefined,
      hosts: new Map(targets.map((target) => [target.host, { state: 'waiting' }])),
      fault: undefined,
      abort: new AbortController(),
      finished: Promise.resolve(),
    };
    job.finished = this.run(job, spec, targets)
      .catch((error: unknown) => {
        const fault =
          error instanceof ImageFault
            ? { reason: error.reason, message: error.message }
            : { reason: R.ImportFailed, message: errorText(error) };
        job.fault = fault;
        for (const host of job.hosts.keys()) job.hosts.set(host, { state: 'failed', ...fault });
      })
      .finally(() => {
        job.state = 'done';
        if (!job.abort.signal.aborted) this.onEnd(uid);
      });
    this.jobs.set(uid, job);
    return job;
  }

  /** Stops the image's job, waits for it to clean up, and forgets it. */
  async cancel(uid: string): Promise<void> {
    const job = this.jobs.get(uid);
    if (!job) return;
    this.jobs.delete(uid);
    job.abort.abort();
    await job.finished;
  }

  /** Forgets a finished job (its results are in the image's status by now). */
  forget(uid: string): void {
    if (this.jobs.get(uid)?.state === 'done') this.jobs.delete(uid);
  }

  uids(): string[] {
    return [...this.jobs.keys()];
  }

  private async run(job: ImportJob, spec: VirtualMachineImageSpec, targets: ImportTarget[]): Promise<void> {
    const { url, sha256, volume } = spec.source;
    if (url !== undefined && sha256 !== undefined) {
      const fetched = await fetchImage(url, sha256, job, job.abort.signal, this.tmpDir);
      try {
        job.facts = { format: fetched.format, sizeBytes: fetched.sizeBytes, sha256: fetched.sha256 };
        job.stage = 'uploading';
        for (const target of targets) await this.onHost(job, target, () => upload(target, fetched));
      } finally {
        await fetched.dispose();
      }
      return;
    }
    if (volume) {
      for (const target of targets)
        await this.onHost(job, target, () => copyVolume(job, target, volume.pool ?? target.pool, volume.name));
    }
  }

  /** Runs one host's part; its failure is that host's, the others go on. */
  private async onHost(job: ImportJob, target: ImportTarget, work: () => Promise<string>): Promise<void> {
    if (job.abort.signal.aborted) throw new Error('cancelled');
    job.hosts.set(target.host, { state: 'importing' });
    try {
      job.hosts.set(target.host, { state: 'done', path: await work() });
    } catch (error) {
      const fault =
        error instanceof ImageFault
          ? { reason: error.reason, message: error.message }
          : { reason: R.ImportFailed, message: `host ${target.host}: ${errorText(error)}` };
      job.hosts.set(target.host, { state: 'failed', ...fault });
    }
  }
}

const volumeFormat = (format: ImageFormatName): VolumeFormat => (format === 'qcow2' ? 'qcow2' : 'raw');

/** A new volume with the fetched bytes; deleted again if the upload does not complete. */
async function upload(target: ImportTarget, image: FetchedImage): Promise<string> {
  const { hypervisor, pool, volume } = target;
  const made = await hypervisor.createVolume(pool, {
    name: volume,
    format: volumeFormat(image.format),
    capacityBytes: image.sizeBytes,
  });
  try {
    await hypervisor.uploadVolume(pool, volume, image.file);
  } catch (error) {
    await hypervisor.deleteVolume(pool, volume).catch(() => false);
    throw error;
  }
  return made.path;
}

/** A copy of an existing pool volume on the target's host; its format is libvirt's word for it. */
async function copyVolume(job: ImportJob, target: ImportTarget, fromPool: string, fromName: string): Promise<string> {
  const { hypervisor, pool, volume, host } = target;
  const from = await hypervisor.volume(fromPool, fromName).catch((error: unknown) => {
    if (isHypervisorError(error, 'not-found')) return undefined; // no such pool
    throw error;
  });
  if (!from)
    throw new ImageFault(
      R.SourceVolumeNotFound,
      `spec.source.volume: no volume ${fromName} in storage pool ${fromPool} on host ${host}; create it there or fix spec.source.volume`,
    );
  if (from.backingPath !== undefined)
    throw new ImageFault(
      R.UnsupportedFormat,
      `spec.source.volume: volume ${fromName} on host ${host} has a backing file (${from.backingPath}); flatten it first (qemu-img convert)`,
    );
  if (from.format === 'unknown')
    throw new ImageFault(
      R.UnsupportedFormat,
      `spec.source.volume: volume ${fromName} on host ${host} is neither qcow2 nor raw`,
    );
  job.facts ??= { format: from.format, sizeBytes: from.capacityBytes };
  try {
    const made = await hypervisor.cloneVolume(
      pool,
      { name: volume, format: from.format, capacityBytes: from.capacityBytes },
      { pool: fromPool, name: fromName },
    );
    return made.path;
  } catch (error) {
    await hypervisor.deleteVolume(pool, volume).catch(() => false);
    throw error;
  }
}
