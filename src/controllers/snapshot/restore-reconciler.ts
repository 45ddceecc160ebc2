// The VirtualMachineRestore controller (key: namespace/name):
//
//   get → Succeeded or Failed: only observedGeneration follows
//   → the snapshot: missing, or not yet readyToUse → Pending, waiting (woken when the snapshot
//     changes: a restore applied in the same sync as its snapshot waits for it); Failed → Failed
//   → its entries (all, or spec.vmName's)
//   → nothing reverted yet: every VM checked first (restore-checks.ts); any refusal → Failed,
//     nothing touched
//   → InProgress with one entry per VM → revert each not yet reverted, in parallel
//     (restore-revert.ts) → all reverted: resume the memory-reverted ones together → Succeeded
//   → some not: InProgress, Ready False PartiallyReverted naming which were reverted and which
//     not and why; looked at again, and the retry finishes the job (reverted VMs are not touched
//     again).
import type { RestoreVmEntry, VirtualMachineRestoreStatus } from '../../api/virtualmachinerestore.js';
import type { Fleet } from '../../hosts/fleet.js';
import { findCondition } from '../../runtime/conditions.js';
import type { EventRecorder, EventType } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/reconciler.js';
import { rfc3339 } from '../../runtime/time.js';
import type { VmObject } from '../resources.js';
import { StatusWriter } from './reconciler.js';
import { revertTarget, type RevertTarget } from './restore-checks.js';
import { resumeReverted, revertVm } from './restore-revert.js';
import { listed, restoreStatus } from './status.js';
import {
  READY,
  SNAPSHOT_EVENTS as E,
  SNAPSHOT_REASONS as R,
  VM_RESTORE,
  type RestoreObject,
  type SnapshotObject,
} from './types.js';

export interface RestoreControllerOptions {
  client: KubeClient;
  restores: Informer<RestoreObject>;
  snapshots: Informer<SnapshotObject>;
  vms: Informer<VmObject>;
  fleet: Fleet;
  events?: EventRecorder;
  /** How soon a restore with VMs not yet reverted tries them again. Default 10 s. */
  retryMs?: number;
  now?: () => Date;
}

type RestoreStatusRecord = VirtualMachineRestoreStatus & Record<string, unknown>;

export class RestoreReconciler implements Reconciler {
  /**
   * By restore UID, the last phase this process wrote: a reconcile that starts before the cache
   * has seen it must not revert again what was reverted (see SnapshotReconciler.settledHere).
   */
  private readonly wroteHere = new Map<string, string>();
  /** By restore UID, the per-VM entries this process last wrote: newer than a lagging cache's. */
  private readonly entriesHere = new Map<string, RestoreVmEntry[]>();

  constructor(private readonly options: RestoreControllerOptions) {}

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  async reconcile({ key, logger }: ReconcileContext): Promise<ReconcileResult | void> {
    const restore = this.options.restores.get(key);
    if (!restore) return;
    const uid = restore.metadata.uid ?? '';
    if (restore.metadata.deletionTimestamp) {
      this.wroteHere.delete(uid);
      this.entriesHere.delete(uid);
      return;
    }
    const wrote = this.wroteHere.get(uid);
    if (wrote !== undefined && wrote !== restore.status?.phase) return; // the cache has not seen our write yet
    const writer = new StatusWriter<RestoreStatusRecord>(this.options.client, restore, VM_RESTORE);
    const write = async (outcome: Parameters<typeof restoreStatus>[2]) => {
      await writer.write(restoreStatus(writer.current, restore.metadata.generation, outcome, this.now()));
      this.wroteHere.set(uid, outcome.phase);
      if (outcome.vms) this.entriesHere.set(uid, outcome.vms);
    };
    const phase = restore.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      const ready = findCondition(restore.status?.conditions, READY);
      return write({ phase, reason: ready?.reason ?? R.Succeeded, message: ready?.message ?? '' });
    }
    const namespace = restore.metadata.namespace ?? '';
    const refuse = async (reason: string, message: string) => {
      await write({ phase: 'Failed', reason, message });
      this.event(restore, 'Warning', E.RestoreRefused, message);
      logger.info({ reason }, 'restore refused');
    };
    // Waiting is only possible before anything was reverted; a restore under way keeps going.
    const wait = async (reason: string, message: string) => {
      const before = findCondition(restore.status?.conditions, READY)?.reason;
      await write({ phase: 'Pending', reason, message });
      if (before !== reason) this.event(restore, 'Normal', E.WaitingForSnapshot, message);
    };
    const snapshot = this.options.snapshots.get(`${namespace}/${restore.spec.snapshotName}`);
    if (!snapshot && phase !== 'InProgress')
      return wait(
        R.SnapshotNotFound,
        `waiting for VirtualMachineSnapshot ${restore.spec.snapshotName} in namespace ${namespace}, which does not exist (yet): make it, or set spec.snapshotName to an existing snapshot (virtfleet snapshot list)`,
      );
    if (!snapshot)
      return refuse(
        R.SnapshotNotFound,
        `VirtualMachineSnapshot ${restore.spec.snapshotName} was deleted while it was being restored`,
      );
    if (snapshot.status?.phase === 'Failed')
      return refuse(
        R.SnapshotNotReady,
        `VirtualMachineSnapshot ${restore.spec.snapshotName} failed (${findCondition(snapshot.status.conditions, READY)?.reason ?? 'Failed'}): restore from a Ready snapshot`,
      );
    if (!snapshot.status?.readyToUse)
      return wait(
        R.SnapshotNotReady,
        `waiting for VirtualMachineSnapshot ${restore.spec.snapshotName} to be ready to use (phase ${snapshot.status?.phase ?? 'Pending'})`,
      );
    const entries = (snapshot.status.vms ?? []).filter(
      (entry) => restore.spec.vmName === undefined || entry.vm === restore.spec.vmName,
    );
    if (entries.length === 0)
      return refuse(
        R.VmNotInSnapshot,
        `VirtualMachine ${restore.spec.vmName ?? ''} is not in VirtualMachineSnapshot ${snapshot.metadata.name ?? ''} (it holds ${listed((snapshot.status.vms ?? []).map((e) => e.vm))}): set spec.vmName to one of them`,
      );

    const previous = new Map(
      (this.entriesHere.get(uid) ?? restore.status?.vms ?? []).map((entry) => [entry.vm, entry]),
    );
    const targets = await Promise.all(
      entries.map((entry) => revertTarget(entry, this.options.vms.get(`${namespace}/${entry.vm}`), this.options.fleet)),
    );
    const started = previous.size > 0;
    if (!started) {
      // Nothing touched yet: any VM that cannot be reverted refuses the whole restore.
      const refusal = targets.find((t): t is Exclude<typeof t, RevertTarget> => 'reason' in t);
      if (refusal) return refuse(refusal.reason, `${refusal.message}; no VM was reverted`);
      await write({
        phase: 'InProgress',
        reason: R.InProgress,
        message: `reverting ${listed(entries.map((e) => e.vm))} to snapshot ${snapshot.metadata.name ?? ''}`,
        vms: entries.map((entry) => ({ vm: entry.vm, host: entry.host, state: 'Pending' })),
      });
    }

    const results: RestoreVmEntry[] = await Promise.all(
      entries.map(async (entry, i): Promise<RestoreVmEntry> => {
        const before = previous.get(entry.vm);
        if (before?.state === 'Reverted') return before;
        const target = targets[i]!;
        if ('reason' in target) return { vm: entry.vm, host: entry.host, state: 'Failed', message: target.message };
        try {
          await revertVm(target);
          this.event(restore, 'Normal', E.Reverted, `reverted ${entry.vm} on ${entry.host}`);
          return { vm: entry.vm, host: entry.host, state: 'Reverted', time: rfc3339(this.now()) };
        } catch (error) {
          const message = `reverting failed: ${(error as Error).message}`;
          this.event(restore, 'Warning', E.RevertFailed, `${entry.vm}: ${message}`);
          return { vm: entry.vm, host: entry.host, state: 'Failed', message };
        }
      }),
    );
    const reverted = results.filter((r) => r.state === 'Reverted').map((r) => r.vm);
    const notYet = results.filter((r) => r.state !== 'Reverted');
    if (notYet.length > 0) {
      const message =
        `reverted: ${reverted.length > 0 ? listed(reverted) : 'none'}; not yet: ${notYet.map((r) => `${r.vm} (${r.message ?? 'pending'})`).join('; ')}; ` +
        'retrying; VMs reverted with memory stay paused until all are reverted';
      await write({ phase: 'InProgress', reason: R.PartiallyReverted, message, vms: results });
      return { requeueAfterMs: this.options.retryMs ?? 10_000 };
    }
    // All reverted: the memory-reverted ones run again together (the restored cut stays consistent).
    await Promise.all(
      targets.filter((t): t is RevertTarget => !('reason' in t)).map((target) => resumeReverted(target)),
    );
    const message = `reverted ${listed(reverted)} to snapshot ${snapshot.metadata.name ?? ''}`;
    await write({
      phase: 'Succeeded',
      reason: R.Succeeded,
      message,
      vms: results,
      completionTime: rfc3339(this.now()),
    });
    this.event(restore, 'Normal', E.Restored, message);
    logger.info({ vms: reverted.length }, 'restore done');
  }

  private event(restore: RestoreObject, type: EventType, reason: string, message: string): void {
    void this.options.events?.record(restore, type, reason, message);
  }
}
