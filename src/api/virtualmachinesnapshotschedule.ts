// VirtualMachineSnapshotSchedule: rolling checkpoints. Every interval it makes a
// VirtualMachineSnapshot of its VM or group, and keeps the newest few; older ones are deleted,
// with their host data (docs/snapshots.md, "Rolling checkpoints").
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { AGE_COLUMN, bool, conditions, int, obj, str, type ResourceDefinition } from './common.js';
import { SnapshotSourceSchema } from './virtualmachinesnapshot.js';

export const VirtualMachineSnapshotScheduleSpecSchema = obj('What to capture, how often, and how many to keep.', {
  source: SnapshotSourceSchema,
  memory: bool(
    'Capture the RAM state too (as VirtualMachineSnapshot spec.memory): the guests pause while it is written.',
    false,
  ),
  intervalSeconds: int(
    'Seconds between two snapshots. Snapshots are made at multiples of the interval since the Unix epoch ' +
      '(every 3600: on the hour), so a controller restart neither skips nor doubles one.',
    { format: 'int64', minimum: 10, maximum: 31_622_400 },
  ),
  keep: int(
    'How many Ready snapshots to keep: once a newer one is Ready, the oldest beyond this many is deleted, with ' +
      'its libvirt snapshots on the hosts.',
    { minimum: 1, maximum: 100 },
  ),
  suspend: Type.Optional(bool('Make no new snapshots (the kept ones stay); default false.', false)),
});

export const VirtualMachineSnapshotScheduleStatusSchema = obj(
  'The observed state of the schedule, written by the controller.',
  {
    lastSnapshotName: Type.Optional(str('The newest snapshot this schedule made.', { maxLength: 253 })),
    lastSnapshotTime: Type.Optional(str('When it was made (RFC 3339).', { format: 'date-time' })),
    nextSnapshotTime: Type.Optional(
      str('When the next one is due (RFC 3339); absent while suspended.', { format: 'date-time' }),
    ),
    readySnapshots: Type.Optional(
      int('Snapshots of this schedule that are Ready (at most keep, once pruned).', { minimum: 0 }),
    ),
    conditions: Type.Optional(
      conditions(
        'Ready: the newest snapshot is Ready (True), is being made (False, InProgress) or failed (False, with its reason; the next one is tried at nextSnapshotTime).',
      ),
    ),
    observedGeneration: Type.Optional(
      int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
    ),
  },
);

export type VirtualMachineSnapshotScheduleSpec = Static<typeof VirtualMachineSnapshotScheduleSpecSchema>;
export type VirtualMachineSnapshotScheduleStatus = Static<typeof VirtualMachineSnapshotScheduleStatusSchema>;

export interface VirtualMachineSnapshotSchedule {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachineSnapshotSchedule';
  metadata: V1ObjectMeta;
  spec: VirtualMachineSnapshotScheduleSpec;
  status?: VirtualMachineSnapshotScheduleStatus;
}

export const virtualMachineSnapshotScheduleResource: ResourceDefinition = {
  kind: 'VirtualMachineSnapshotSchedule',
  plural: 'virtualmachinesnapshotschedules',
  singular: 'virtualmachinesnapshotschedule',
  listKind: 'VirtualMachineSnapshotScheduleList',
  shortNames: ['vmsnapsched'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'Rolling checkpoints: every intervalSeconds a VirtualMachineSnapshot of one VM or of a label-selected group ' +
    '(owned by this schedule), keeping the newest `keep` Ready ones; older ones are deleted with their host data.',
  spec: VirtualMachineSnapshotScheduleSpecSchema,
  status: VirtualMachineSnapshotScheduleStatusSchema,
  printerColumns: [
    { name: 'Interval', type: 'integer', jsonPath: '.spec.intervalSeconds', description: 'Seconds between snapshots.' },
    { name: 'Keep', type: 'integer', jsonPath: '.spec.keep', description: 'Ready snapshots kept.' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readySnapshots', description: 'Ready snapshots now.' },
    { name: 'Last', type: 'string', jsonPath: '.status.lastSnapshotName', description: 'The newest snapshot.' },
    {
      name: 'Next',
      type: 'date',
      jsonPath: '.status.nextSnapshotTime',
      description: 'When the next is due.',
      priority: 1,
    },
    AGE_COLUMN,
  ],
};
