// The VirtualMachineImage controller (key: namespace/name), in kubebuilder's order:
//
//   get (gone → drop its job) → deletion (deletion.ts: waits while VMs use it, then deletes its
//   volumes, finalizer last) → finalizer → spec changed since import: old volumes deleted (or,
//   while VMs use them, kept and Stalled) → HostPool → targets (targets.ts) → each host: Ready
//   (volume there), Importing (job under way), Failed, or to import → a job for those (jobs.ts)
//   → status (status.ts), written only when it changed → Events on change → requeue.
import type { HostImageStatus } from '../../api/virtualmachineimage.js';
import type { Fleet } from '../../hosts/fleet.js';
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import type { Logger } from '../../observability/logging.js';
import { findCondition } from '../../runtime/conditions.js';
import type { EventRecorder } from '../../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../../runtime/finalizers.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/reconciler.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { errorText } from '../error-text.js';
import type { PoolObject, VmObject } from '../resources.js';
import { deleteImageVolumes, imageUsers, namesList } from './deletion.js';
import { ImportJobs, type ImageFacts, type ImportJob, type ImportTarget } from './jobs.js';
import {
  IMAGE_EVENTS as E,
  IMAGE_FINALIZER,
  IMAGE_REASONS as R,
  VIRTUAL_MACHINE_IMAGE,
  imageVolumeName,
  sourceFingerprint,
  type ImageObject,
} from './resource.js';
import { imageStatus, type ImageStatusInput } from './status.js';
import { imageTargets } from './targets.js';
import { currentUpload, uploadCommand, uploadedHostEntry, uploadFacts } from './uploaded.js';

export interface ImageControllerOptions {
  client: KubeClient;
  images: Informer<ImageObject>;
  vms: Informer<VmObject>;
  pools: Informer<PoolObject>;
  fleet: Fleet;
  events?: EventRecorder;
  logger: Logger;
  /** How often an import's progress is written. Default 5 s. */
  progressIntervalMs?: number;
  /** When to look again at hosts not ready, a missing pool, or a failed download. Default 30 s. */
  retryMs?: number;
  /** Where downloads are staged (a private directory each); default os.tmpdir(). */
  tmpDir?: string;
  /** Called with an image's key when its job ends (the wiring enqueues it). */
  wake?: (key: string) => void;
}

const MAX_RETRY_MS = 10 * 60_000;
/** Failures another attempt may get past by itself. */
const RETRIABLE: ReadonlySet<string> = new Set([R.DownloadFailed, R.ImportFailed]);

export class ImageReconciler implements Reconciler {
  readonly jobs: ImportJobs;
  /** By UID: failed imports in a row (the last one's job), for the retry's backoff. */
  private readonly failures = new Map<string, { count: number; retryAt: number; job: ImportJob }>();
  /** By UID: the image's key, for waking it when its job ends. */
  private readonly keys = new Map<string, string>();
  /** By UID: what the last Event said, so Events go out on change only. */
  private readonly reported = new Map<string, string>();
  private readonly progressMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: ImageControllerOptions) {
    this.progressMs = options.progressIntervalMs ?? 5_000;
    this.retryMs = options.retryMs ?? 30_000;
    this.jobs = new ImportJobs((uid) => {
      const key = this.keys.get(uid);
      if (key) options.wake?.(key);
    }, options.tmpDir);
  }

  async reconcile({ key, logger }: ReconcileContext): Promise<ReconcileResult | void> {
    const image = this.options.images.get(key);
    if (!image) return;
    const uid = image.metadata.uid ?? key;
    this.keys.set(uid, key);
    if (image.metadata.deletionTimestamp) return this.deleting(image, uid, logger);
    await addFinalizer(this.options.client, VIRTUAL_MACHINE_IMAGE, image, IMAGE_FINALIZER);

    const fingerprint = sourceFingerprint(image);
    const previous = image.status;
    const base = {
      previous,
      generation: image.metadata.generation,
      fingerprint,
      hostPool: image.spec.hostPoolRef.name,
      now: new Date(),
    };
    if (previous?.importedSpec !== undefined && previous.importedSpec !== fingerprint) {
      const blocked = await this.dropOldVolumes(image, uid);
      if (blocked) {
        // The volumes are still those of the old spec: status says so, until they can go.
        const old = { fingerprint: previous.importedSpec, hostPool: previous.hostPool ?? base.hostPool };
        await this.write(image, { ...base, ...old, ...keep(previous), blocked }, uid);
        return;
      }
      // The old entries are gone with their volumes: this import starts from nothing.
      return this.importing(image, uid, { ...base, previous: { ...previous, hosts: [] } }, logger);
    }
    return this.importing(image, uid, base, logger);
  }

  private async importing(
    image: ImageObject,
    uid: string,
    base: Omit<ImageStatusInput, 'hosts' | 'shared' | 'facts'>,
    logger: Logger,
  ): Promise<ReconcileResult | void> {
    const poolName = image.spec.hostPoolRef.name;
    const pool = this.options.pools.get(poolName);
    if (!pool) {
      const blocked = {
        phase: 'Pending' as const,
        reason: R.HostPoolNotFound,
        message: `spec.hostPoolRef: HostPool ${poolName} does not exist; create it or name another pool`,
      };
      await this.write(image, { ...base, shared: false, hosts: [], facts: undefined, blocked }, uid);
      return { requeueAfterMs: this.retryMs };
    }
    const storagePool = pool.spec.storage.pool;
    const volume = imageVolumeName(image.metadata.namespace ?? '', image.metadata.name ?? '');
    if (image.spec.source.upload) return this.uploaded(image, uid, base, pool, storagePool, volume);
    const targets = imageTargets(pool, this.options.fleet);
    const job = this.retryDue(uid, this.jobFor(uid, base.fingerprint));
    const before = new Map((base.previous?.hosts ?? []).map((entry) => [entry.name, entry]));
    const entries: HostImageStatus[] = [];
    const toImport: ImportTarget[] = [];
    let facts: ImageFacts | undefined = job?.facts ?? factsOf(base.previous);
    for (const target of targets.hosts) {
      const at = { name: target.name, pool: storagePool, volume };
      if (!target.ready) {
        entries.push({
          ...at,
          phase: 'Pending',
          reason: R.HostNotReady,
          message: `${target.why ?? ''}; imported once it is ready`,
        });
        continue;
      }
      const hypervisor = this.options.fleet.hypervisor(target.ready.uri);
      try {
        const entry = await this.hostEntry(
          target.name,
          hypervisor,
          storagePool,
          volume,
          job,
          before.get(target.name),
          pool.spec.storage.path,
        );
        if (entry === 'import') {
          toImport.push({ host: target.name, hypervisor, pool: storagePool, volume });
          entries.push({ ...at, phase: 'Importing', progress: 'starting' });
        } else entries.push(entry);
      } catch (error) {
        const message = `host ${target.name}: ${errorText(error)}`;
        entries.push({ ...at, phase: 'Pending', reason: R.HostNotReady, message });
      }
    }
    if (toImport.length > 0 && (!job || job.state === 'done')) {
      logger.info({ hosts: toImport.map((t) => t.host), volume }, 'importing image');
      await this.jobs.start(uid, base.fingerprint, image.spec, toImport);
    }
    if (job?.facts) facts = job.facts;
    const status = await this.write(image, { ...base, shared: targets.shared, hosts: entries, facts }, uid);
    const failure = this.failures.get(uid);
    if (failure && failure.job === job) return { requeueAfterMs: Math.max(1, failure.retryAt - Date.now()) };
    if (status.phase === 'Ready') this.failures.delete(uid);
    if (status.phase === 'Importing' || toImport.length > 0) return { requeueAfterMs: this.progressMs };
    if (status.phase === 'Pending') return { requeueAfterMs: this.retryMs };
  }

  /**
   * An uploaded image (uploaded.ts): entries from status.upload and the hosts' volumes; nothing
   * imported, nothing deleted. For shared storage, the host the upload wrote through is the one.
   */
  private async uploaded(
    image: ImageObject,
    uid: string,
    base: Omit<ImageStatusInput, 'hosts' | 'shared' | 'facts'>,
    pool: PoolObject,
    storagePool: string,
    volume: string,
  ): Promise<ReconcileResult | void> {
    const upload = currentUpload(image.status?.upload, base.fingerprint);
    const targets = imageTargets(pool, this.options.fleet);
    if (targets.shared && upload?.hosts?.[0]) {
      const name = upload.hosts[0];
      const all = imageTargets(
        { ...pool, spec: { ...pool.spec, storage: { ...pool.spec.storage, shared: false } } },
        this.options.fleet,
      );
      const wrote = all.hosts.find((host) => host.name === name);
      if (wrote) targets.hosts = [wrote];
    }
    const command = uploadCommand(image.metadata.namespace ?? '', image.metadata.name ?? '');
    const entries: HostImageStatus[] = [];
    const now = Date.now();
    for (const target of targets.hosts) {
      const at = { name: target.name, pool: storagePool, volume };
      if (!target.ready) {
        entries.push({ ...at, phase: 'Pending', reason: R.HostNotReady, message: `${target.why ?? ''}` });
        continue;
      }
      const hypervisor = this.options.fleet.hypervisor(target.ready.uri);
      try {
        entries.push(await uploadedHostEntry(at, hypervisor, upload, command, now));
      } catch (error) {
        entries.push({
          ...at,
          phase: 'Pending',
          reason: R.HostNotReady,
          message: `host ${target.name}: ${errorText(error)}`,
        });
      }
    }
    const facts = uploadFacts(upload);
    const status = await this.write(image, { ...base, shared: targets.shared, hosts: entries, facts }, uid);
    if (status.phase === 'Importing') return { requeueAfterMs: this.progressMs };
    if (status.phase === 'Pending') return { requeueAfterMs: this.retryMs };
  }

  /** The job for this image's current spec, if any (a job for an older spec is stopped). */
  private jobFor(uid: string, fingerprint: string): ImportJob | undefined {
    const job = this.jobs.get(uid);
    if (job && job.fingerprint !== fingerprint) {
      void this.jobs.cancel(uid);
      return undefined;
    }
    return job;
  }

  /**
   * A finished job with a failure worth repeating by itself (a download, an upload: a server or a
   * host may be back) is forgotten once its backoff is over (30 s, doubling, at most 10 min), so
   * its hosts are imported again; other failures wait for a change of the spec.
   */
  private retryDue(uid: string, job: ImportJob | undefined): ImportJob | undefined {
    if (job?.state !== 'done') return job;
    const retriable = [...job.hosts.values()].some((host) => host.state === 'failed' && RETRIABLE.has(host.reason));
    if (!retriable) return job;
    const failure = this.failures.get(uid);
    if (failure?.job !== job) {
      const count = (failure?.count ?? 0) + 1;
      const delay = Math.min(this.retryMs * 2 ** (count - 1), MAX_RETRY_MS);
      this.failures.set(uid, { count, retryAt: Date.now() + delay, job });
      return job;
    }
    if (failure.retryAt > Date.now()) return job;
    this.jobs.forget(uid);
    return undefined;
  }

  /** One host's entry, or 'import' when the image must be brought there. */
  private async hostEntry(
    host: string,
    hypervisor: Hypervisor,
    pool: string,
    volume: string,
    job: ImportJob | undefined,
    before: HostImageStatus | undefined,
    poolPath: string | undefined,
  ): Promise<HostImageStatus | 'import'> {
    const at = { name: host, pool, volume };
    const result = job?.hosts.get(host);
    if (result && (result.state === 'waiting' || result.state === 'importing'))
      return { ...at, phase: 'Importing', progress: progressOf(job!, result.state) };
    if (result?.state === 'failed') return { ...at, phase: 'Failed', reason: result.reason, message: result.message };
    await hypervisor.ensureStoragePool({ name: pool, ...(poolPath ? { path: poolPath } : {}) });
    const existing = await hypervisor.volume(pool, volume);
    const known = result?.state === 'done' || before?.phase === 'Ready';
    if (existing && known) return { ...at, phase: 'Ready', path: existing.path };
    // A volume nobody knows to be complete may be a half-made import (a restart mid-upload).
    if (existing) await hypervisor.deleteVolume(pool, volume);
    if (before?.phase === 'Failed' && !job && !RETRIABLE.has(before.reason ?? '')) return { ...before };
    return 'import';
  }

  /**
   * Writes the status; an Event when the image became Ready or its failure changed goes first, so
   * whoever sees the status can find the Event.
   */
  private async write(image: ImageObject, input: ImageStatusInput, uid: string) {
    const status = imageStatus(input);
    const ready = findCondition(status.conditions, 'Ready');
    const said = `${ready?.status} ${ready?.reason} ${ready?.status === 'True' ? '' : ready?.message}`;
    if (!this.reported.has(uid)) {
      const old = findCondition(image.status?.conditions, 'Ready');
      this.reported.set(uid, `${old?.status} ${old?.reason} ${old?.status === 'True' ? '' : old?.message}`);
    }
    if (this.reported.get(uid) !== said) {
      this.reported.set(uid, said);
      if (ready?.status === 'True') {
        const what = status.format ? `${status.format}, ${status.sizeBytes} bytes` : 'imported';
        await this.event(image, 'Normal', E.Imported, `${what}: ${ready.message}`);
      } else if (status.phase === 'Failed' || ready?.reason === R.InUse || ready?.reason === R.HostPoolNotFound) {
        const reason = ready?.reason === R.InUse ? E.DeletionBlocked : E.ImportFailed;
        await this.event(image, 'Warning', reason, ready?.message ?? '');
      }
    }
    await patchStatusIfChanged(
      this.options.client,
      VIRTUAL_MACHINE_IMAGE,
      image as ImageObject & { status?: Record<string, unknown> },
      status as Record<string, unknown>,
    );
    return status;
  }

  /** After a change of spec.source or hostPoolRef: the old volumes go, unless VMs use them. */
  private async dropOldVolumes(
    image: ImageObject,
    uid: string,
  ): Promise<{ phase: 'Failed'; reason: string; message: string } | undefined> {
    const users = imageUsers(image, this.options.vms);
    if (users.length > 0) {
      return {
        phase: 'Failed',
        reason: R.InUse,
        message:
          `spec changed while VMs ${namesList(users)} use the image: its volumes keep the old content until no VM uses it; ` +
          'to use new content, create another VirtualMachineImage, or restore the spec',
      };
    }
    await this.jobs.cancel(uid);
    await this.deleteVolumes(image);
    return undefined;
  }

  private async deleting(image: ImageObject, uid: string, logger: Logger): Promise<ReconcileResult | void> {
    if (!hasFinalizer(image, IMAGE_FINALIZER)) return;
    const users = imageUsers(image, this.options.vms);
    if (users.length > 0) {
      const blocked = {
        phase: 'Deleting' as const,
        reason: R.InUse,
        message: `deletion waits: VMs ${namesList(users)} use the image (spec.disks[].source.image.name); delete them or change their disks`,
      };
      const previous = image.status;
      await this.write(
        image,
        {
          previous,
          generation: image.metadata.generation,
          fingerprint: previous?.importedSpec ?? sourceFingerprint(image),
          hostPool: previous?.hostPool ?? image.spec.hostPoolRef.name,
          ...keep(previous),
          blocked,
          now: new Date(),
        },
        uid,
      );
      // VMs going away enqueue the image (wiring.ts); this is the safety net.
      return { requeueAfterMs: this.retryMs };
    }
    await this.jobs.cancel(uid);
    const deleted = await this.deleteVolumes(image);
    if (deleted === undefined) return { requeueAfterMs: this.retryMs };
    if (deleted.length > 0)
      await this.event(image, 'Normal', E.VolumesDeleted, `volumes deleted on ${deleted.join(', ')}`);
    logger.info({ hosts: deleted }, 'image volumes deleted');
    await removeFinalizer(this.options.client, VIRTUAL_MACHINE_IMAGE, image, IMAGE_FINALIZER);
    this.forget(uid);
  }

  /**
   * Deletes the image's volume on every host of the pool it was imported to (status.hostPool,
   * else spec.hostPoolRef); undefined when a host that may hold one cannot be asked now.
   */
  private async deleteVolumes(image: ImageObject): Promise<string[] | undefined> {
    const poolName = image.status?.hostPool ?? image.spec.hostPoolRef.name;
    const pool = this.options.pools.get(poolName);
    if (!pool) return []; // the pool and its hosts are gone: nothing is reachable to delete
    const volume = imageVolumeName(image.metadata.namespace ?? '', image.metadata.name ?? '');
    const hosts: Array<{ name: string; hypervisor: Hypervisor }> = [];
    for (const declared of pool.spec.hosts) {
      const host = this.options.fleet.host(poolName, declared.name);
      if (!host?.verdict.readiness.ready) {
        const had = image.status?.hosts?.some((entry) => entry.name === declared.name);
        if (had) return undefined;
        continue;
      }
      hosts.push({ name: declared.name, hypervisor: this.options.fleet.hypervisor(host.uri) });
    }
    try {
      return await deleteImageVolumes(hosts, pool.spec.storage.pool, volume);
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) return undefined;
      throw error;
    }
  }

  private async event(image: ImageObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.options.events?.record(image, type, reason, message);
  }

  /** Drops what is remembered of an image. */
  forget(uid: string): void {
    void this.jobs.cancel(uid);
    this.failures.delete(uid);
    this.reported.delete(uid);
    this.keys.delete(uid);
  }

  /** Drops what is remembered of images no longer in the cache. */
  prune(): void {
    const live = new Set(this.options.images.list().map((image) => image.metadata.uid ?? ''));
    for (const uid of this.keys.keys()) if (!live.has(uid)) this.forget(uid);
  }
}

function keep(previous: ImageObject['status']): Pick<ImageStatusInput, 'shared' | 'hosts' | 'facts'> {
  return { shared: previous?.shared ?? false, hosts: previous?.hosts ?? [], facts: factsOf(previous) };
}

function factsOf(status: ImageObject['status']): ImageFacts | undefined {
  if (!status?.format || status.sizeBytes === undefined) return undefined;
  return { format: status.format, sizeBytes: status.sizeBytes, ...(status.sha256 ? { sha256: status.sha256 } : {}) };
}

function progressOf(job: ImportJob, state: 'waiting' | 'importing'): string {
  if (job.stage === 'downloading') {
    if (job.total) return `downloading ${Math.floor((job.received / job.total) * 100)}%`;
    return `downloading ${(job.received / 2 ** 20).toFixed(1)} MiB`;
  }
  if (state === 'waiting') return 'waiting for another host';
  return job.stage === 'uploading' ? 'uploading to the host' : 'copying the volume';
}
