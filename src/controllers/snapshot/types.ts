// The resource types, finalizer, condition reasons and Event reasons of the snapshot and restore
// controllers, in one small file (the kubebuilder way).
import { GROUP, VERSION } from '../../api/common.js';
import type { VirtualMachineRestore } from '../../api/virtualmachinerestore.js';
import type { VirtualMachineSnapshot } from '../../api/virtualmachinesnapshot.js';
import type { VirtualMachineSnapshotSchedule } from '../../api/virtualmachinesnapshotschedule.js';
import type { KubeObject, ResourceType } from '../../runtime/kube-client.js';

export const VM_SNAPSHOT: ResourceType = {
  kind: 'VirtualMachineSnapshot',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachinesnapshots',
  namespaced: true,
};

export const VM_RESTORE: ResourceType = {
  kind: 'VirtualMachineRestore',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachinerestores',
  namespaced: true,
};

export const VM_SNAPSHOT_SCHEDULE: ResourceType = {
  kind: 'VirtualMachineSnapshotSchedule',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachinesnapshotschedules',
  namespaced: true,
};

export type SnapshotObject = VirtualMachineSnapshot & KubeObject;
export type ScheduleObject = VirtualMachineSnapshotSchedule & KubeObject;

/** On every snapshot a schedule makes: the schedule's name (its ownerReference holds the UID). */
export const SCHEDULE_LABEL = 'virtfleet.io/snapshot-schedule';
export type RestoreObject = VirtualMachineRestore & KubeObject;

/** Held on every VirtualMachineSnapshot until its libvirt snapshots are gone from the hosts. */
export const SNAPSHOT_FINALIZER = 'virtfleet.io/host-snapshots';

/** The condition both kinds carry (with Reconciling and Stalled for kstatus). */
export const READY = 'Ready';

/** Ready's reasons, for snapshots and restores. */
export const SNAPSHOT_REASONS = {
  /** Every VM captured (snapshot) or reverted (restore). */
  Succeeded: 'Succeeded',
  InProgress: 'InProgress',
  /** spec.source.vmName names no VM. */
  VmNotFound: 'VmNotFound',
  /** spec.source.selector matches no VM. */
  SelectorMatchesNothing: 'SelectorMatchesNothing',
  /** A VM has no host yet. */
  VmNotPlaced: 'VmNotPlaced',
  /** A VM is being deleted. */
  VmDeleting: 'VmDeleting',
  /** A VM's host is not ready or does not answer. */
  HostNotReady: 'HostNotReady',
  /** A VM is live-migrating. */
  VmMigrating: 'VmMigrating',
  /** A VM is suspended (its memory is in a managed-save file). */
  VmSuspended: 'VmSuspended',
  /** A VM has a raw disk: internal snapshots need qcow2. */
  RawDisk: 'RawDisk',
  /** Pausing a VM of a group failed: the others were resumed, nothing captured. */
  PauseFailed: 'PauseFailed',
  /** Capturing a VM failed. */
  CaptureFailed: 'CaptureFailed',
  /** The controller stopped during the capture: what it had taken is deleted. */
  Interrupted: 'Interrupted',
  /** Restore: spec.snapshotName names no snapshot (yet: the restore waits; deleted mid-restore: Failed). */
  SnapshotNotFound: 'SnapshotNotFound',
  /** Restore: the snapshot is not readyToUse yet (the restore waits), or Failed. */
  SnapshotNotReady: 'SnapshotNotReady',
  /** Restore: spec.vmName is not a VM of the snapshot. */
  VmNotInSnapshot: 'VmNotInSnapshot',
  /** Restore: the VM was deleted and made again since the snapshot (a new UID: new disks). */
  VmReplaced: 'VmReplaced',
  /** Restore: the VM runs on another host than the one holding its snapshot. */
  VmMoved: 'VmMoved',
  /** Restore: the host no longer has the libvirt snapshot. */
  HostSnapshotMissing: 'HostSnapshotMissing',
  /** Restore: some VMs reverted, others not yet; retried. */
  PartiallyReverted: 'PartiallyReverted',
} as const;

export const SNAPSHOT_EVENTS = {
  Refused: 'SnapshotRefused',
  Captured: 'SnapshotCaptured',
  Failed: 'SnapshotFailed',
  HostSnapshotsDeleted: 'HostSnapshotsDeleted',
  RestoreRefused: 'RestoreRefused',
  WaitingForSnapshot: 'WaitingForSnapshot',
  Reverted: 'Reverted',
  RevertFailed: 'RevertFailed',
  Restored: 'Restored',
  ScheduledSnapshotMade: 'ScheduledSnapshotMade',
  ScheduledSnapshotPruned: 'ScheduledSnapshotPruned',
  ScheduledSnapshotFailed: 'ScheduledSnapshotFailed',
} as const;

/** The libvirt snapshot's name on the host: unique per snapshot object, the same on every retry. */
export function hostSnapshotName(snapshot: { metadata: { uid?: string } }): string {
  return `vmsnap-${snapshot.metadata.uid ?? ''}`;
}
