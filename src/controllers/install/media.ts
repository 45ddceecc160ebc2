// The installer's kernel and initrd on a host, for a direct kernel boot: libvirt starts QEMU
// with -kernel/-initrd paths *on the host*, so the controller puts the files there as volumes of
// the HostPool's storage pool, the way it puts image disks there (../vm-storage.ts): downloaded by
// the controller (streamed to a private temp file), then uploaded by the binding.
//
// The volumes are a per-host cache shared by every install from the same URL, so many VMs from
// one profile download the installer once per host. A volume's name says what it holds:
//
//   vf-installer-<20 hex of sha256(url + validator)>-<vmlinuz|initrd.img>
//
// where the validator is what the server says about the file now (its ETag; else Last-Modified
// and Content-Length; else Content-Length), asked with a GET whose body is not read. A tree that
// changes under the same URL (rocky/9 moving from 9.4 to 9.5) thus gets new volumes instead of
// an old kernel that would not match the tree's new second stage. A server that says nothing
// about the file gets a name from the URL alone (its cached volume is used until deleted).
//
// A volume that exists is complete: uploads go to `<name>.part`, which is then copied to
// `<name>` by the host and deleted, so a controller that dies mid-upload leaves only a .part
// (made again next time). An administrator may put the files there by hand (air-gapped hosts,
// ftp:// or nfs:// trees the controller cannot fetch): the condition names the volume it wants.
//
// For a PXE boot (pxe.ts) they go into the PXE pool, the TFTP root, instead.
//
// Needs a pool whose volumes are files (a directory pool, the default): a kernel on an LVM or
// RBD volume is no file QEMU can load. Cached volumes are never deleted by the controller:
// `virsh vol-list POOL | grep vf-installer-` shows them, `virsh vol-delete` removes old ones.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { downloadToFile } from '../download.js';
import { errorText } from '../error-text.js';
import { stagingDir } from '../staging.js';

export const INSTALLER_VOLUME_PREFIX = 'vf-installer-';
/** World-readable: a PXE boot serves them by TFTP through dnsmasq, which does not run as root. */
const MEDIA_MODE = '0644';
export type MediaKind = 'vmlinuz' | 'initrd.img';

/** What the server says about a file, for naming its volume ('' when it says nothing). */
export function validatorOf(headers: Pick<Headers, 'get'>): string {
  const etag = headers.get('etag');
  if (etag) return `etag:${etag}`;
  const modified = headers.get('last-modified');
  const length = headers.get('content-length');
  if (modified) return `modified:${modified};length:${length ?? ''}`;
  return length ? `length:${length}` : '';
}

/** The volume that caches `url` (as the server describes it by `validator`). */
export function installerVolumeName(url: string, validator: string, kind: MediaKind): string {
  const digest = createHash('sha256').update(`${url}\n${validator}`, 'utf8').digest('hex').slice(0, 20);
  return `${INSTALLER_VOLUME_PREFIX}${digest}-${kind}`;
}

export type MediaResult =
  | { state: 'ready'; kernel: string; initrd: string }
  | { state: 'pending'; message: string; requeueAfterMs: number }
  | { state: 'failed'; message: string; requeueAfterMs: number };

interface Job {
  url: string;
  state: 'downloading' | 'uploading' | 'done' | 'failed';
  received: number;
  total: number | undefined;
  error?: string;
  /** After a failure: no new attempt before this. */
  retryAt?: number;
  finished: Promise<void>;
}

export interface InstallMediaOptions {
  /** How soon a pending download is looked at again. Default 5 s. */
  progressIntervalMs?: number;
  /** How soon a failed one is tried again. Default 30 s. */
  retryMs?: number;
  /** Called when a download ends either way (the waiting VMs are reconciled). */
  onJobEnd?: () => void;
  tmpDir?: string;
  /** How long a probe of a URL is trusted. Default 60 s. */
  probeTtlMs?: number;
  now?: () => number;
}

export class InstallMedia {
  /** By `${host uri} ${pool} ${volume}`: downloads of this process. */
  private readonly jobs = new Map<string, Job>();
  /** By URL: the volume name the last probe gave, and when. */
  private readonly probes = new Map<string, { validator: string; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: InstallMediaOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The paths of the kernel and initrd in `pool` on the host, once there. Rejects only with
   * HypervisorErrors of kind 'unreachable'; everything else is a result naming what failed.
   */
  async ensure(
    hypervisor: Hypervisor,
    pool: string,
    urls: { kernelUrl: string; initrdUrl: string },
  ): Promise<MediaResult> {
    const results = [
      await this.ensureOne(hypervisor, pool, urls.kernelUrl, 'vmlinuz'),
      await this.ensureOne(hypervisor, pool, urls.initrdUrl, 'initrd.img'),
    ];
    const failed = results.filter((r) => r.state === 'failed');
    if (failed.length > 0)
      return {
        state: 'failed',
        message: failed.map((r) => r.message).join('; '),
        requeueAfterMs: Math.min(...failed.map((r) => r.retryMs)),
      };
    const pending = results.filter((r) => r.state === 'pending');
    if (pending.length > 0)
      return {
        state: 'pending',
        message: pending.map((r) => r.message).join('; '),
        requeueAfterMs: this.options.progressIntervalMs ?? 5_000,
      };
    const [kernel, initrd] = results as Array<{ state: 'ready'; path: string }>;
    return { state: 'ready', kernel: kernel!.path, initrd: initrd!.path };
  }

  private async ensureOne(
    hypervisor: Hypervisor,
    pool: string,
    url: string,
    kind: MediaKind,
  ): Promise<
    | { state: 'ready'; path: string }
    | { state: 'pending'; message: string }
    | { state: 'failed'; message: string; retryMs: number }
  > {
    const retryMs = this.options.retryMs ?? 30_000;
    const fetchable = /^https?:\/\//.test(url);
    let validator = '';
    if (fetchable) {
      const probed = await this.probe(url);
      if ('error' in probed) return { state: 'failed', message: `installer ${kind} ${url}: ${probed.error}`, retryMs };
      validator = probed.validator;
    }
    const name = installerVolumeName(url, validator, kind);
    const key = `${hypervisor.uri} ${pool} ${name}`;
    const job = this.jobs.get(key);
    if (job && (job.state === 'downloading' || job.state === 'uploading'))
      return { state: 'pending', message: progress(kind, job) };
    try {
      const existing = await hypervisor.volume(pool, name);
      if (existing) {
        this.jobs.delete(key);
        return { state: 'ready', path: existing.path };
      }
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      return { state: 'failed', message: `storage pool ${pool}: ${errorText(error)}`, retryMs };
    }
    if (!fetchable) {
      return {
        state: 'failed',
        message:
          `installer ${kind} ${url}: the controller downloads http:// and https:// URLs only; set spec.boot.kernelUrl and initrdUrl ` +
          `of the profile to such URLs, or put the file into storage pool ${pool} on the host as volume ${name}`,
        retryMs,
      };
    }
    if (job?.state === 'failed') {
      const left = (job.retryAt ?? 0) - this.now();
      if (left > 0)
        return { state: 'failed', message: `installer ${kind} ${url}: ${job.error ?? 'failed'}`, retryMs: left };
    }
    this.start(key, url, hypervisor, pool, name);
    return { state: 'pending', message: progress(kind, this.jobs.get(key)!) };
  }

  private async probe(url: string): Promise<{ validator: string } | { error: string }> {
    const known = this.probes.get(url);
    if (known && this.now() - known.at < (this.options.probeTtlMs ?? 60_000)) return { validator: known.validator };
    let response: Response;
    try {
      response = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      return { error: `cannot fetch: ${errorText(error)}` };
    }
    await response.body?.cancel().catch(() => undefined);
    if (!response.ok) return { error: `HTTP ${response.status} ${response.statusText}`.trim() };
    const validator = validatorOf(response.headers);
    this.probes.set(url, { validator, at: this.now() });
    return { validator };
  }

  private start(key: string, url: string, hypervisor: Hypervisor, pool: string, name: string): void {
    const job: Job = { url, state: 'downloading', received: 0, total: undefined, finished: Promise.resolve() };
    job.finished = this.run(job, hypervisor, pool, name)
      .then(
        () => {
          job.state = 'done';
        },
        (error: unknown) => {
          job.state = 'failed';
          job.error = errorText(error);
          job.retryAt = this.now() + (this.options.retryMs ?? 30_000);
        },
      )
      .finally(() => this.options.onJobEnd?.());
    this.jobs.set(key, job);
  }

  private async run(job: Job, hypervisor: Hypervisor, pool: string, name: string): Promise<void> {
    const dir = await mkdtemp(join(this.options.tmpDir ?? stagingDir(), 'virtfleet-installer-'));
    const part = `${name}.part`;
    try {
      const file = join(dir, 'file');
      await downloadToFile(job.url, file, job);
      job.state = 'uploading';
      const { size } = await stat(file);
      await hypervisor.deleteVolume(pool, part).catch(() => false);
      try {
        await hypervisor.createVolume(pool, { name: part, format: 'raw', capacityBytes: size, mode: MEDIA_MODE });
        await hypervisor.uploadVolume(pool, part, file);
        // The host copies it under its real name: a volume of that name is always whole.
        await hypervisor.cloneVolume(
          pool,
          { name, format: 'raw', capacityBytes: size, mode: MEDIA_MODE },
          { pool, name: part },
        );
      } catch (error) {
        throw new Error(`upload to storage pool ${pool}: ${errorText(error)}`, { cause: error });
      } finally {
        await hypervisor.deleteVolume(pool, part).catch(() => false);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function progress(kind: MediaKind, job: Job): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (job.state === 'uploading') return `installer ${kind}: uploading ${mib(job.received)} to the host`;
  const total = job.total === undefined ? '' : ` of ${mib(job.total)}`;
  return `installer ${kind}: downloading ${job.url}: ${mib(job.received)}${total}`;
}
