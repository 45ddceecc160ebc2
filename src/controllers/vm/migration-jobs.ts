// Live migrations under way, by VM UID: started by the VM reconciler (a host in maintenance, or
// `virtfleet vm migrate`), run in the background (a migration takes seconds to minutes, a
// reconcile must not), looked at by later reconciles, and ended with an outcome the reconciler
// records. A few at a time per source host; failures are retried after a delay, then given up
// until something changes.
import { errorText } from '../error-text.js';
import { isHypervisorError, type Hypervisor, type MigrationProgress } from '../../hypervisors/hypervisor.js';
import type { StorageMode } from './migration-storage.js';

export interface MigrationJob {
  from: string;
  to: string;
  startedAt: number;
  /** Set when it ended. */
  outcome?: { ok: boolean; aborted: boolean; message: string; endedAt: number };
  /** Last figures read (for the Migrating condition), and when. */
  progress?: { at: number; figures: MigrationProgress | undefined };
  /** What happens to the disks (migration-storage.ts). */
  storage: StorageMode;
  /** What the settle step did with the volumes afterwards (copied storage only). */
  settled?: string;
  /** The call's outcome while the settle step still runs (the job counts as ended after it). */
  settling?: { ok: boolean; message: string };
}

export interface MigrationStart {
  uid: string;
  from: string;
  to: string;
  /** The source host. */
  hypervisor: Hypervisor;
  /** The destination's URI as the source reaches it. */
  destinationUri: string;
  timeoutMs: number;
  storage?: StorageMode;
  /**
   * Shared storage libvirt does not know as shared, which the operator declared coherent
   * (HostPool spec.storage.assumeCoherent): passes VIR_MIGRATE_UNSAFE.
   */
  unsafe?: boolean;
  /**
   * Copied storage: run after the call ended and before the job counts as ended, with whether it
   * succeeded (the copies the VM no longer uses go); its answer is kept in the job.
   */
  settle?: (ok: boolean) => Promise<string>;
}

/** What one VM's migrations have come to: failures in a row and when to try again. */
interface History {
  failures: number;
  retryAt: number;
  lastMessage: string;
}

export const MIGRATIONS_PER_HOST = 2;
export const MIGRATION_ATTEMPTS = 3;

export class MigrationJobs {
  private readonly jobs = new Map<string, MigrationJob>();
  private readonly history = new Map<string, History>();

  constructor(
    /** Called with the UID when a job ends, so the VM is reconciled at once. */
    private readonly onEnd: (uid: string) => void,
    private readonly retryMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(uid: string): MigrationJob | undefined {
    return this.jobs.get(uid);
  }

  /** UIDs with a migration under way (their domain is on two hosts for a while). */
  active(): Set<string> {
    return new Set([...this.jobs].filter(([, job]) => !job.outcome).map(([uid]) => uid));
  }

  /** Migrations running out of `host` now. */
  runningFrom(host: string): number {
    let count = 0;
    for (const job of this.jobs.values()) if (!job.outcome && job.from === host) count++;
    return count;
  }

  /** Whether the VM may start a migration now; otherwise why not. */
  mayStart(
    uid: string,
    from: string,
    now: number,
  ): { ok: true } | { ok: false; reason: 'busy' | 'backoff' | 'gave-up'; message: string; retryInMs?: number } {
    const past = this.history.get(uid);
    if (past && past.failures >= MIGRATION_ATTEMPTS) return { ok: false, reason: 'gave-up', message: past.lastMessage };
    if (past && past.retryAt > now)
      return { ok: false, reason: 'backoff', message: past.lastMessage, retryInMs: past.retryAt - now };
    if (this.runningFrom(from) >= MIGRATIONS_PER_HOST)
      return { ok: false, reason: 'busy', message: `${MIGRATIONS_PER_HOST} migrations already run from ${from}` };
    return { ok: true };
  }

  start(request: MigrationStart): MigrationJob {
    const storage = request.storage ?? 'None';
    const job: MigrationJob = { from: request.from, to: request.to, startedAt: this.now(), storage };
    this.jobs.set(request.uid, job);
    const options = {
      timeoutMs: request.timeoutMs,
      ...(storage === 'Copied' ? { copyStorage: 'all' as const } : {}),
      ...(storage === 'Shared' && request.unsafe === true ? { unsafe: true } : {}),
    };
    // Set on the job only once the settle step is done: until then the job is under way (no
    // retry starts while the half-copied volumes are still being removed).
    let outcome: MigrationJob['outcome'];
    void request.hypervisor
      .migrate(request.uid, { uri: request.destinationUri }, options)
      .then(
        () => {
          outcome = {
            ok: true,
            aborted: false,
            message: `migrated from ${job.from} to ${job.to}`,
            endedAt: this.now(),
          };
          this.history.delete(request.uid);
        },
        (error: unknown) => {
          const message = errorText(error);
          outcome = { ok: false, aborted: isHypervisorError(error, 'aborted'), message, endedAt: this.now() };
          const past = this.history.get(request.uid);
          const failures = (past?.failures ?? 0) + 1;
          this.history.set(request.uid, {
            failures,
            retryAt: this.now() + this.retryMs * 2 ** (failures - 1),
            lastMessage: message,
          });
        },
      )
      .then(async () => {
        if (!request.settle) return;
        job.settling = { ok: outcome?.ok ?? false, message: outcome?.message ?? '' };
        job.settled = await request.settle(outcome?.ok ?? false).catch((error: unknown) => errorText(error));
      })
      .finally(() => {
        job.outcome = outcome;
        this.onEnd(request.uid);
      });
    return job;
  }

  /** The ended job, taken out (its outcome is recorded once). */
  takeEnded(uid: string): MigrationJob | undefined {
    const job = this.jobs.get(uid);
    if (!job?.outcome) return undefined;
    this.jobs.delete(uid);
    return job;
  }

  failures(uid: string): number {
    return this.history.get(uid)?.failures ?? 0;
  }

  /** A migration that failed before its call was made (its disks could not be prepared): counted as an attempt. */
  failedToStart(uid: string, message: string): void {
    const failures = (this.history.get(uid)?.failures ?? 0) + 1;
    this.history.set(uid, { failures, retryAt: this.now() + this.retryMs * 2 ** (failures - 1), lastMessage: message });
  }

  /**
   * A migration that cannot work as things stand (migration-storage.ts): given up at once, not
   * retried, until a new request or the host's maintenance changes (reset).
   */
  refuse(uid: string, message: string): void {
    this.history.set(uid, { failures: MIGRATION_ATTEMPTS, retryAt: Infinity, lastMessage: message });
  }

  /** A new request (or the host back out of maintenance): failures are forgotten. */
  reset(uid: string): void {
    this.history.delete(uid);
  }

  forget(uid: string): void {
    this.jobs.delete(uid);
    this.history.delete(uid);
  }
}

/** `41 % of 130 MiB, pass 2` (with disks: `, disks 20 % of 1024 MiB`) from a job's figures. */
export function progressText(progress: MigrationProgress | undefined): string {
  if (!progress?.active || !progress.dataTotal) return 'starting';
  const percent = (done: number | undefined, total: number) => Math.min(100, Math.floor(((done ?? 0) / total) * 100));
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  const disks = progress.diskTotal
    ? `, disks ${percent(progress.diskProcessed, progress.diskTotal)} % of ${mib(progress.diskTotal)} MiB`
    : '';
  return `${percent(progress.dataProcessed, progress.dataTotal)} % of ${mib(progress.dataTotal)} MiB${progress.memIteration && progress.memIteration > 1 ? `, pass ${progress.memIteration}` : ''}${disks}`;
}
