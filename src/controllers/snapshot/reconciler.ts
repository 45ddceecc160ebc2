// The VirtualMachineSnapshot controller (key: namespace/name), in the kubebuilder order:
//
//   get (gone → done) → deleting: delete the host snapshots, then drop the finalizer
//   → Ready or Failed already: only observedGeneration follows (a snapshot is taken once)
//   → InProgress found at start: a capture was interrupted → undo it, Failed
//   → finalizer → which VMs, and may they be captured (members.ts: refusals) → InProgress with
//     the plan written first (so a restarted controller knows which hosts to clean)
//   → the cut (cut.ts) → Ready with one entry per VM, or Failed with the reason.
import type { SnapshotVmEntry, VirtualMachineSnapshotStatus } from '../../api/virtualmachinesnapshot.js';
import type { Fleet } from '../../hosts/fleet.js';
import { ignoring } from '../../hypervisors/hypervisor.js';
import type { EventRecorder, EventType } from '../../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../../runtime/finalizers.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/reconciler.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { rfc3339 } from '../../runtime/time.js';
import { findCondition } from '../../runtime/conditions.js';
import type { VmObject } from '../resources.js';
import { heldBy } from '../vm-actions.js';
import { deleteHostSnapshots } from './cleanup.js';
import { capturedAt, nextLogicalClock, takeCut } from './cut.js';
import { resolveMembers, type Member } from './members.js';
import { listed, snapshotStatus } from './status.js';
import {
  hostSnapshotName,
  READY,
  SNAPSHOT_EVENTS as E,
  SNAPSHOT_FINALIZER,
  SNAPSHOT_REASONS as R,
  VM_SNAPSHOT,
  type SnapshotObject,
} from './types.js';

export interface SnapshotControllerOptions {
  client: KubeClient;
  snapshots: Informer<SnapshotObject>;
  vms: Informer<VmObject>;
  fleet: Fleet;
  events?: EventRecorder;
  /** How soon a deletion whose host does not answer looks again. Default 15 s. */
  hostRetryMs?: number;
  now?: () => Date;
}

export class SnapshotReconciler implements Reconciler {
  /**
   * By snapshot UID, the settled phase this process wrote. The cache may still show an older
   * status (InProgress, or none) when the next reconcile starts: that must not read as an
   * interrupted capture, nor start one again.
   */
  private readonly settledHere = new Map<string, string>();

  constructor(private readonly options: SnapshotControllerOptions) {}

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  async reconcile({ key, logger }: ReconcileContext): Promise<ReconcileResult | void> {
    const snapshot = this.options.snapshots.get(key);
    if (!snapshot) return;
    if (snapshot.metadata.deletionTimestamp) return this.finalize(snapshot);
    const phase = snapshot.status?.phase;
    const uid = snapshot.metadata.uid ?? '';
    const wrote = this.settledHere.get(uid);
    if (wrote !== undefined && wrote !== phase) return; // the cache has not seen our write yet
    if (phase === 'Ready' || phase === 'Failed') return this.settled(snapshot);
    if (phase === 'InProgress') return this.interrupted(snapshot);
    await addFinalizer(this.options.client, VM_SNAPSHOT, snapshot, SNAPSHOT_FINALIZER);
    const writer = new StatusWriter(this.options.client, snapshot);

    const resolved = await resolveMembers(snapshot, this.options.vms, this.options.fleet);
    if (!resolved.ok) {
      const { reason, message } = resolved.refusal;
      await writer.write(this.status(snapshot, writer, { phase: 'Failed', reason, message }));
      this.settledHere.set(uid, 'Failed');
      this.event(snapshot, 'Warning', E.Refused, message);
      logger.info({ reason }, 'snapshot refused');
      return;
    }
    const members = resolved.members;
    const name = hostSnapshotName(snapshot);
    const plan: SnapshotVmEntry[] = members.map((member) => ({
      vm: member.vm.metadata.name ?? '',
      uid: member.vm.metadata.uid ?? '',
      host: member.host.name,
      pool: member.host.pool,
      snapshotName: name,
      state: 'Pending',
    }));
    const group = snapshot.spec.source.selector !== undefined;
    await writer.write(
      this.status(snapshot, writer, {
        phase: 'InProgress',
        reason: R.InProgress,
        message: `capturing ${listed(plan.map((e) => e.vm))}${group ? ' as one consistent cut' : ''}`,
        vms: plan,
      }),
    );

    const cut = await takeCut(
      members,
      {
        name,
        description: `virtfleet VirtualMachineSnapshot ${snapshot.metadata.namespace ?? ''}/${snapshot.metadata.name ?? ''}`,
        memory: snapshot.spec.memory,
      },
      { barrier: group },
    );
    if (!cut.ok) {
      const vms = plan.map((entry) => ({ ...entry, state: 'Failed' as const, message: cut.message }));
      await writer.write(
        this.status(snapshot, writer, { phase: 'Failed', reason: cut.reason, message: cut.message, vms }),
      );
      this.event(snapshot, 'Warning', E.Failed, cut.message);
      return;
    }
    const now = this.now();
    const vms: SnapshotVmEntry[] = plan.map((entry, i) => {
      const captured = cut.captured[i]!;
      return {
        ...entry,
        state: 'Captured',
        memory: captured.memory,
        consistency: captured.consistency,
        time: rfc3339(capturedAt(captured.info, now)),
      };
    });
    const clock = group
      ? nextLogicalClock(
          this.earlierCuts(snapshot),
          plan.map((e) => e.uid),
        )
      : undefined;
    const summary = vms.map((e) => `${e.vm} on ${e.host} (${e.consistency})`).join(', ');
    const pause = cut.pauseWindowMs !== undefined ? `; paused ${cut.pauseWindowMs} ms` : '';
    const warnings = cut.warnings.length > 0 ? `; but ${cut.warnings.join('; ')}` : '';
    const message = `captured ${summary}${pause}${warnings}`;
    await writer.write(
      this.status(snapshot, writer, {
        phase: 'Ready',
        reason: R.Succeeded,
        message,
        vms,
        ...(clock !== undefined ? { cut: { logicalClock: clock, pauseWindowMs: cut.pauseWindowMs ?? 0 } } : {}),
      }),
    );
    this.settledHere.set(uid, 'Ready');
    this.event(snapshot, cut.warnings.length > 0 ? 'Warning' : 'Normal', E.Captured, message);
    logger.info({ vms: vms.length, pauseWindowMs: cut.pauseWindowMs }, 'snapshot captured');
  }

  /** A snapshot is taken once: later reconciles only carry observedGeneration forward. */
  private async settled(snapshot: SnapshotObject): Promise<void> {
    const ready = findCondition(snapshot.status?.conditions, READY);
    const writer = new StatusWriter(this.options.client, snapshot);
    await writer.write(
      this.status(snapshot, writer, {
        phase: snapshot.status!.phase!,
        reason: ready?.reason ?? R.Succeeded,
        message: ready?.message ?? '',
      }),
    );
  }

  /**
   * InProgress at the start of a reconcile: the process that captured stopped midway (the whole
   * cut runs inside one reconcile). What it may have taken is deleted and VMs it may have paused
   * are resumed (unless a pause hold keeps them paused); the snapshot is Failed.
   */
  private async interrupted(snapshot: SnapshotObject): Promise<ReconcileResult | void> {
    const entries = snapshot.status?.vms ?? [];
    const cleanup = await deleteHostSnapshots(entries, this.options.fleet);
    if (cleanup.waiting.length > 0) return { requeueAfterMs: this.options.hostRetryMs ?? 15_000 };
    for (const entry of entries) {
      const vm = this.options.vms.get(`${snapshot.metadata.namespace ?? ''}/${entry.vm}`);
      const host = this.options.fleet.host(entry.pool, entry.host);
      if (!vm || !host || heldBy(vm.metadata.annotations) === 'pause') continue;
      const hypervisor = this.options.fleet.hypervisor(host.uri);
      const state = await hypervisor.state(entry.uid).catch(() => undefined);
      if (state?.state === 'paused') await ignoring(['invalid-state', 'not-found'], () => hypervisor.resume(entry.uid));
    }
    const message =
      'the controller stopped while capturing: what it had captured was deleted and the VMs it paused were resumed; create the snapshot again';
    const writer = new StatusWriter(this.options.client, snapshot);
    const vms = entries.map((entry) => ({ ...entry, state: 'Failed' as const, message: 'interrupted' }));
    await writer.write(this.status(snapshot, writer, { phase: 'Failed', reason: R.Interrupted, message, vms }));
    this.settledHere.set(snapshot.metadata.uid ?? '', 'Failed');
    this.event(snapshot, 'Warning', E.Failed, message);
  }

  private async finalize(snapshot: SnapshotObject): Promise<ReconcileResult | void> {
    if (!hasFinalizer(snapshot, SNAPSHOT_FINALIZER)) return;
    // Failed entries were deleted when they failed (cut.ts) or were interrupted (above).
    const entries = (snapshot.status?.vms ?? []).filter((entry) => entry.state !== 'Failed');
    const cleanup = await deleteHostSnapshots(entries, this.options.fleet);
    if (cleanup.waiting.length > 0) {
      this.event(
        snapshot,
        'Warning',
        E.HostSnapshotsDeleted,
        `waiting to delete the snapshots of ${listed(cleanup.waiting)}: the host must answer (or leave its HostPool)`,
      );
      return { requeueAfterMs: this.options.hostRetryMs ?? 15_000 };
    }
    if (cleanup.deleted.length > 0 || cleanup.gone.length > 0) {
      const gone = cleanup.gone.length > 0 ? `; nothing to delete for ${listed(cleanup.gone)}` : '';
      this.event(
        snapshot,
        'Normal',
        E.HostSnapshotsDeleted,
        `deleted the host snapshots of ${listed(cleanup.deleted)}${gone}`,
      );
    }
    await removeFinalizer(this.options.client, VM_SNAPSHOT, snapshot, SNAPSHOT_FINALIZER);
    this.settledHere.delete(snapshot.metadata.uid ?? '');
  }

  /** The cuts of earlier group snapshots in the namespace, for the logical clock. */
  private earlierCuts(snapshot: SnapshotObject): Array<{ vmUids: string[]; clock: number }> {
    return this.options.snapshots
      .list()
      .filter(
        (other) =>
          other.metadata.namespace === snapshot.metadata.namespace &&
          other.metadata.uid !== snapshot.metadata.uid &&
          other.status?.cut !== undefined,
      )
      .map((other) => ({
        vmUids: (other.status?.vms ?? []).map((e) => e.uid),
        clock: other.status!.cut!.logicalClock,
      }));
  }

  private status(
    snapshot: SnapshotObject,
    writer: StatusWriter,
    outcome: Parameters<typeof snapshotStatus>[2],
  ): VirtualMachineSnapshotStatus {
    return snapshotStatus(writer.current, snapshot.metadata.generation, outcome, this.now());
  }

  private event(snapshot: SnapshotObject, type: EventType, reason: string, message: string): void {
    void this.options.events?.record(snapshot, type, reason, message);
  }
}

/** Writes a status more than once in one reconcile, each time against the last one written. */
export class StatusWriter<S extends Record<string, unknown> = VirtualMachineSnapshotStatus & Record<string, unknown>> {
  current: S | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly object: { metadata: SnapshotObject['metadata']; status?: unknown },
    private readonly type = VM_SNAPSHOT,
  ) {
    this.current = object.status as S | undefined;
  }

  async write(status: object): Promise<void> {
    await patchStatusIfChanged(
      this.client,
      this.type,
      { ...(this.object as object), status: this.current } as never,
      status as S,
    );
    this.current = status as S;
  }
}

export type { Member };
