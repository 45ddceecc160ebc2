// Step: live migration (a host in maintenance, `virtfleet vm migrate`). Started here, run in the
// background by MigrationJobs (a migration takes seconds to minutes, a reconcile must not);
// followed while it runs (progress in Migrating); how it ended is settled by the copies step by
// the location rule, never taken from the call's outcome alone. Writes Migrating,
// status.migration (before the migration starts) and lastAction of `vm migrate`.
import { rfc3339 } from '../../runtime/time.js';
import type { DomainStatus, Hypervisor, MigrationProgress } from '../../hypervisors/hypervisor.js';
import { errorText } from '../error-text.js';
import { place } from '../../scheduler/placement.js';
import type { FleetHost } from '../../hosts/fleet.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import { isActive } from '../run-strategy.js';
import { MIGRATE_TO_ANNOTATION, actionRequest, isNewRequest } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';
import { MigrationJobs, progressText } from './migration-jobs.js';
import {
  INCOMING_GONE_WAIT_MS,
  planStorage,
  prepareDestination,
  settleCopies,
  type StoragePlan,
} from './migration-storage.js';
import { MIGRATION_LOOK_MS, MIGRATION_TIMEOUT_MS } from './options.js';
import { schedulingPolicy, vmRequest, type PlacementStep } from './placement.js';

export class MigrationStep {
  readonly jobs: MigrationJobs;

  constructor(
    private readonly kit: VmKit,
    private readonly placement: PlacementStep,
  ) {
    this.jobs = new MigrationJobs((uid) => kit.options.wake?.(uid), undefined, kit.now);
  }

  /** A migration of this process still running: its progress in the Migrating condition; undefined when none runs. */
  async inFlight(vm: VmObject, hypervisor: Hypervisor, draft: VmStatusDraft): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const now = this.kit.now();
    const job = this.jobs.get(uid);
    if (job && !job.outcome) {
      if (!job.progress || now - job.progress.at >= MIGRATION_LOOK_MS) {
        job.progress = { at: now, figures: await hypervisor.migrationProgress(uid).catch(() => undefined) };
      }
      draft.phase('Migrating');
      // The call ended; the copies it left are being removed before it counts as ended.
      const settling = job.settling
        ? `the call ${job.settling.ok ? 'succeeded' : `failed (${job.settling.message})`}; removing the volumes left on ${job.settling.ok ? job.from : job.to}`
        : undefined;
      draft.set(
        C.Migrating,
        'True',
        R.Migrating,
        `migrating from ${job.from} to ${job.to}${job.storage === 'Copied' ? ' with its disks' : ''}: ${settling ?? progressText(job.progress.figures)}`,
      );
      if (draft.status.migration) draft.status.migration = withProgress(draft.status.migration, job.progress.figures);
      return MIGRATION_LOOK_MS;
    }
    return undefined;
  }

  /**
   * Moves a running VM off a host in maintenance, or where `virtfleet vm migrate` asks, a few at a
   * time per source host. Undefined: nothing to do, the reconcile goes on; else when to look
   * again (the power steps wait meanwhile).
   */
  async start(
    vm: VmObject,
    pool: PoolObject,
    host: FleetHost,
    hypervisor: Hypervisor,
    domain: DomainStatus,
    draft: VmStatusDraft,
  ): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const now = this.kit.now();
    const parsed = actionRequest(vm.metadata.annotations);
    const request = parsed && !('error' in parsed) && parsed.action === 'migrate' ? parsed : undefined;
    const last = draft.status.lastAction;
    // A request taken up already is asked still while it is under way.
    const asked = request !== undefined && (isNewRequest(request, last) || last?.state === 'InProgress');
    if (!asked && !host.maintenance) {
      this.jobs.reset(uid);
      const current = draft.condition(C.Migrating);
      // A drain's refusal ends with the drain (an asked one stays, next to its lastAction).
      const drainRefused =
        current?.reason === R.MigrationRefused && (current.message ?? '').includes(' is in maintenance, ');
      if (current?.status === 'True' || drainRefused)
        draft.set(C.Migrating, 'False', R.NotMigrating, 'no migration under way');
      return undefined;
    }
    if (!isActive(domain.state)) return undefined; // nothing runs to move; a start request is refused by decideAction
    if (asked && isNewRequest(request, last)) {
      this.jobs.reset(uid);
      this.kit.recordAction(vm, draft, {
        id: request.id,
        action: 'migrate',
        state: 'InProgress',
        message: 'migration asked',
      });
    }
    const why = asked ? 'asked' : `host ${host.name} is in maintenance`;
    const may = this.jobs.mayStart(uid, host.name, now);
    if (!may.ok) {
      if (may.reason === 'gave-up') {
        if (asked)
          this.kit.recordAction(vm, draft, {
            id: request.id,
            action: 'migrate',
            state: 'Failed',
            message: may.message,
          });
        return undefined;
      }
      if (may.reason === 'busy') draft.set(C.Migrating, 'False', R.MigrationQueued, `${why}: waiting, ${may.message}`);
      return may.retryInMs ?? MIGRATION_LOOK_MS;
    }
    const target = asked ? vm.metadata.annotations?.[MIGRATE_TO_ANNOTATION] : undefined;
    const poolName = pool.metadata.name ?? '';
    const candidates = this.placement
      .hostStates(poolName)
      .filter((state) => state.name !== host.name && (!target || state.name === target));
    if (target && candidates.length === 0) {
      this.kit.recordAction(vm, draft, {
        id: request!.id,
        action: 'migrate',
        state: 'Refused',
        message: `no host ${target} in HostPool ${poolName} other than the VM's own (${host.name})`,
      });
      return undefined;
    }
    const result = place(vmRequest(vm), candidates, schedulingPolicy(pool));
    if (!result.placed) {
      const message = `${why}, but no other host can take the VM: ${result.message}`;
      if (draft.condition(C.Migrating)?.message !== message) this.kit.event(vm, 'Warning', E.MigrationFailed, message);
      draft.set(C.Migrating, 'False', R.NoDestination, message);
      if (asked) this.kit.recordAction(vm, draft, { id: request!.id, action: 'migrate', state: 'Failed', message });
      return asked ? undefined : this.kit.hostRetryMs;
    }
    const destination = this.kit.options.fleet.host(poolName, result.host)!;
    const ends = {
      source: { name: host.name, hypervisor },
      destination: { name: result.host, hypervisor: this.kit.options.fleet.hypervisor(destination.uri) },
    };
    // The disks: shared, copied (their volumes made on the destination first), or refused.
    let plan: StoragePlan;
    let made: string[] = [];
    try {
      plan = await planStorage({ vm, storage: pool.spec.storage, xml: await hypervisor.xml(uid), ...ends });
      if (plan.ok && plan.storage === 'Copied')
        made = await prepareDestination(plan, hypervisor, ends.destination.hypervisor);
    } catch (error) {
      const message = `${why}, but the disks cannot be prepared on ${result.host}: ${errorText(error)}`;
      this.jobs.failedToStart(uid, message);
      this.kit.event(vm, 'Warning', E.MigrationFailed, message);
      draft.set(C.Migrating, 'False', R.MigrationFailed, `${message}; retrying`);
      return MIGRATION_LOOK_MS;
    }
    if (!plan.ok) {
      const message = `${why}, but the VM cannot move to ${result.host}: ${plan.message}`;
      // Not retried: nothing would change by itself (a new request or the host's maintenance does).
      this.jobs.refuse(uid, message);
      if (draft.condition(C.Migrating)?.message !== message) this.kit.event(vm, 'Warning', E.MigrationRefused, message);
      draft.set(C.Migrating, 'False', R.MigrationRefused, `${message}; the VM keeps running on ${host.name}`);
      if (asked) this.kit.recordAction(vm, draft, { id: request!.id, action: 'migrate', state: 'Failed', message });
      return undefined;
    }
    const storage = plan.storage;
    // The operator's claim that libvirt's "unsafe" refusal is wrong for this shared storage.
    const unsafe = storage === 'Shared' && pool.spec.storage.assumeCoherent === true;
    const copied = plan.storage === 'Copied' ? plan : undefined;
    // Recorded before it starts: a controller that dies meanwhile finds where the VM went.
    draft.status.migration = { source: host.name, target: result.host, started: rfc3339(now), storage };
    draft.phase('Migrating');
    draft.set(
      C.Migrating,
      'True',
      R.Migrating,
      `migrating from ${host.name} to ${result.host}${copied ? ` with its disks (${made.join(', ')} made there)` : ''}: starting (${why})`,
    );
    await this.kit.writeStatus(vm, draft);
    this.kit.options.allocations.migrating.add(uid);
    this.jobs.start({
      uid,
      from: host.name,
      to: result.host,
      hypervisor,
      destinationUri: destination.uri,
      timeoutMs: MIGRATION_TIMEOUT_MS,
      storage,
      unsafe,
      ...(copied
        ? {
            settle: async (ok: boolean) => {
              const settled = await settleCopies(
                uid,
                copied.pool,
                made,
                ok,
                ends.source,
                ends.destination,
                INCOMING_GONE_WAIT_MS,
              );
              this.kit.event(vm, settled.startsWith('volumes ') ? 'Normal' : 'Warning', E.VolumesDeleted, settled);
              return settled;
            },
          }
        : {}),
    });
    this.kit.event(
      vm,
      'Normal',
      E.MigrationStarted,
      `live migration from ${host.name} to ${result.host} started (${why}); disks: ${storageWords(plan)}${unsafe ? ' (HostPool spec.storage.assumeCoherent: migrated although libvirt cannot tell the file system is shared)' : ''}`,
    );
    return MIGRATION_LOOK_MS;
  }

  forget(uid: string): void {
    this.jobs.forget(uid);
    this.kit.options.allocations.migrating.delete(uid);
  }
}

type MigrationStatus = NonNullable<VmStatusDraft['status']['migration']>;

/** status.migration with the job's latest figures (bytes). */
function withProgress(migration: MigrationStatus, figures: MigrationProgress | undefined): MigrationStatus {
  const next: MigrationStatus = { ...migration };
  const put = (
    key: 'dataTotalBytes' | 'dataRemainingBytes' | 'diskTotalBytes' | 'diskRemainingBytes',
    value?: number,
  ) => {
    if (value !== undefined) next[key] = value;
  };
  put('dataTotalBytes', figures?.dataTotal);
  put('dataRemainingBytes', figures?.dataRemaining);
  if (figures?.diskTotal) {
    put('diskTotalBytes', figures.diskTotal);
    put('diskRemainingBytes', figures.diskRemaining);
  }
  return next;
}

function storageWords(plan: Extract<StoragePlan, { ok: true }>): string {
  if (plan.storage !== 'Copied') return plan.storage === 'None' ? 'none' : 'on shared storage, not copied';
  return `copied (${plan.volumes.map((v) => `${v.disk}: ${v.capacityBytes} bytes`).join(', ')})`;
}
