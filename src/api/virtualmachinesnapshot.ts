// VirtualMachineSnapshot: a checkpoint of one VM, or of a label-selected group of VMs taken as
// one consistent cut (every VM paused before any is captured). Internal qcow2 snapshots on the
// VMs' hosts hold the data; this object records where (docs/snapshots.md).
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  AGE_COLUMN,
  bool,
  conditions,
  dnsSubdomain,
  int,
  labelSelector,
  listOf,
  obj,
  oneOf,
  str,
  type ResourceDefinition,
} from './common.js';
import { celExactlyOne, countSet, withRules } from './rules.js';

export const SNAPSHOT_PHASES = ['Pending', 'InProgress', 'Ready', 'Failed'] as const;
export type SnapshotPhase = (typeof SNAPSHOT_PHASES)[number];

/** How consistent a VM's captured disks are. */
export const SNAPSHOT_CONSISTENCY = ['Memory', 'Quiesced', 'CrashConsistent', 'Stopped'] as const;
export type SnapshotConsistency = (typeof SNAPSHOT_CONSISTENCY)[number];

export const SnapshotSourceSchema = withRules(
  obj('Which VMs to capture: one VM by name, or a group by label selector; set exactly one.', {
    vmName: Type.Optional(dnsSubdomain("Name of one VirtualMachine in the snapshot's namespace.")),
    selector: Type.Optional(
      labelSelector(
        "A label selector over the namespace's VirtualMachines: every VM it matches is captured in one consistent cut.",
      ),
    ),
  }),
  [
    {
      id: 'vmsnap-one-source',
      cel: celExactlyOne(['vmName', 'selector']),
      message: 'set exactly one of vmName or selector',
      holds: (source) => countSet(source, ['vmName', 'selector']) === 1,
    },
  ],
);

export const VirtualMachineSnapshotSpecSchema = obj('What to capture.', {
  source: SnapshotSourceSchema,
  memory: bool(
    'Capture the RAM state too: a restore continues the guests exactly where they were. Without it the disks only: ' +
      "quiesced through the guest agent's filesystem freeze when an agent answers, crash-consistent otherwise " +
      '(status.vms[].consistency says which); a restore boots them from those disks.',
    false,
  ),
});

const VmEntry = obj('One captured VM.', {
  vm: dnsSubdomain('Name of the VirtualMachine.'),
  uid: str('UID of the VirtualMachine when it was captured (its domain UUID).', { maxLength: 64 }),
  host: str('Name of the HostPool host the VM was on.', { maxLength: 63 }),
  pool: str('Name of the HostPool.', { maxLength: 253 }),
  snapshotName: str("Name of the libvirt snapshot on the host (inside the VM's qcow2 disks).", { maxLength: 200 }),
  state: oneOf('Whether this VM is captured yet.', ['Pending', 'Captured', 'Failed']),
  memory: Type.Optional(bool('The snapshot holds the RAM state (a restore continues the guest).')),
  consistency: Type.Optional(
    oneOf(
      'Memory (RAM captured), Quiesced (filesystems frozen by the guest agent), CrashConsistent (no agent answered: ' +
        'as after a power cut), or Stopped (the VM was not running).',
      SNAPSHOT_CONSISTENCY,
    ),
  ),
  sizeBytes: Type.Optional(
    int('Bytes the VM state occupies in the snapshot, where the host reports it.', { format: 'int64', minimum: 0 }),
  ),
  time: Type.Optional(str('When it was captured (RFC 3339).', { format: 'date-time' })),
  message: Type.Optional(str('Why it failed, when it did.', { maxLength: 4096 })),
});

export const VirtualMachineSnapshotStatusSchema = obj(
  'The observed state of the snapshot, written by the controller.',
  {
    phase: Type.Optional(oneOf('A one-word summary for humans; conditions carry the details.', SNAPSHOT_PHASES)),
    readyToUse: Type.Optional(bool('Every VM is captured: the snapshot can be restored.')),
    vms: Type.Optional(listOf('One entry per captured VM.', VmEntry, { maxItems: 256 })),
    cut: Type.Optional(
      obj('For a group: the consistent cut.', {
        logicalClock: int(
          'Lamport clock value of the cut: greater than that of every earlier snapshot of any of these VMs, so ' +
            'checkpoints of overlapping groups are ordered.',
          { format: 'int64', minimum: 1 },
        ),
        pauseWindowMs: int('Milliseconds from the first VM paused to the last VM resumed.', {
          format: 'int64',
          minimum: 0,
        }),
      }),
    ),
    conditions: Type.Optional(
      conditions(
        'Ready: every VM captured (True), capturing (False, reason InProgress), or refused or failed (False, with the ' +
          'reason and what to do). Reconciling and Stalled as kstatus reads them.',
      ),
    ),
    observedGeneration: Type.Optional(
      int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
    ),
  },
);

export type VirtualMachineSnapshotSpec = Static<typeof VirtualMachineSnapshotSpecSchema>;
export type VirtualMachineSnapshotStatus = Static<typeof VirtualMachineSnapshotStatusSchema>;
export type SnapshotVmEntry = Static<typeof VmEntry>;

export interface VirtualMachineSnapshot {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachineSnapshot';
  metadata: V1ObjectMeta;
  spec: VirtualMachineSnapshotSpec;
  status?: VirtualMachineSnapshotStatus;
}

export const virtualMachineSnapshotResource: ResourceDefinition = {
  kind: 'VirtualMachineSnapshot',
  plural: 'virtualmachinesnapshots',
  singular: 'virtualmachinesnapshot',
  listKind: 'VirtualMachineSnapshotList',
  shortNames: ['vmsnap'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'A checkpoint of one VirtualMachine, or of a label-selected group taken as one consistent cut across hosts, ' +
    'with or without the RAM state; kept as internal qcow2 snapshots on the hosts and deleted with this object. ' +
    'The spec is read once, when the capture starts: to capture again, create a new snapshot.',
  spec: VirtualMachineSnapshotSpecSchema,
  status: VirtualMachineSnapshotStatusSchema,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Pending, InProgress, Ready or Failed.' },
    { name: 'ReadyToUse', type: 'boolean', jsonPath: '.status.readyToUse', description: 'It can be restored.' },
    { name: 'VM', type: 'string', jsonPath: '.spec.source.vmName', description: 'The VM, for a single-VM snapshot.' },
    { name: 'Memory', type: 'boolean', jsonPath: '.spec.memory', description: 'With the RAM state.' },
    {
      name: 'Pause',
      type: 'integer',
      jsonPath: '.status.cut.pauseWindowMs',
      description: "A group's pause window in milliseconds.",
      priority: 1,
    },
    {
      name: 'Reason',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      description: "Ready's reason.",
      priority: 1,
    },
    AGE_COLUMN,
  ],
};
