// VirtualMachineRestore: brings the VMs of a VirtualMachineSnapshot (or one of them) back to it:
// each is stopped, its disks (and memory, when captured) reverted, then run per its runStrategy.
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  AGE_COLUMN,
  conditions,
  dnsSubdomain,
  int,
  listOf,
  obj,
  oneOf,
  str,
  type ResourceDefinition,
} from './common.js';

export const RESTORE_PHASES = ['Pending', 'InProgress', 'Succeeded', 'Failed'] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

export const VirtualMachineRestoreSpecSchema = obj('What to restore.', {
  snapshotName: dnsSubdomain("Name of the VirtualMachineSnapshot, in the restore's namespace; it must be readyToUse."),
  vmName: Type.Optional(
    dnsSubdomain('Restore only this VM of the snapshot (for a group snapshot); default every VM it holds.'),
  ),
});

const VmEntry = obj('One VM of the restore.', {
  vm: dnsSubdomain('Name of the VirtualMachine.'),
  host: Type.Optional(str('Name of the HostPool host it is reverted on.', { maxLength: 63 })),
  state: oneOf('Pending (not yet), Reverted (done) or Failed (see message; a retry finishes it).', [
    'Pending',
    'Reverted',
    'Failed',
  ]),
  time: Type.Optional(str('When it was reverted (RFC 3339).', { format: 'date-time' })),
  message: Type.Optional(str('What happened, or why not.', { maxLength: 4096 })),
});

export const VirtualMachineRestoreStatusSchema = obj('The observed state of the restore, written by the controller.', {
  phase: Type.Optional(oneOf('A one-word summary for humans; conditions carry the details.', RESTORE_PHASES)),
  vms: Type.Optional(listOf('One entry per VM: reverted or not.', VmEntry, { maxItems: 256 })),
  completionTime: Type.Optional(str('When every VM was reverted (RFC 3339).', { format: 'date-time' })),
  conditions: Type.Optional(
    conditions(
      'Ready: every VM reverted (True), under way (False, InProgress), or refused or failed (False, with the ' +
        'reason, the VMs reverted and not, and what to do). Reconciling and Stalled as kstatus reads them.',
    ),
  ),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

export type VirtualMachineRestoreSpec = Static<typeof VirtualMachineRestoreSpecSchema>;
export type VirtualMachineRestoreStatus = Static<typeof VirtualMachineRestoreStatusSchema>;
export type RestoreVmEntry = Static<typeof VmEntry>;

export interface VirtualMachineRestore {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachineRestore';
  metadata: V1ObjectMeta;
  spec: VirtualMachineRestoreSpec;
  status?: VirtualMachineRestoreStatus;
}

export const virtualMachineRestoreResource: ResourceDefinition = {
  kind: 'VirtualMachineRestore',
  plural: 'virtualmachinerestores',
  singular: 'virtualmachinerestore',
  listKind: 'VirtualMachineRestoreList',
  shortNames: ['vmrestore'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'Brings the VMs of a VirtualMachineSnapshot back to it: stops them, reverts their disks (and memory when it ' +
    'was captured), then runs them per their runStrategy. Refused while a VM migrates; reports which VMs were ' +
    'reverted and which not, and finishes the job when retried.',
  spec: VirtualMachineRestoreSpecSchema,
  status: VirtualMachineRestoreStatusSchema,
  printerColumns: [
    { name: 'Snapshot', type: 'string', jsonPath: '.spec.snapshotName', description: 'The snapshot restored.' },
    {
      name: 'Phase',
      type: 'string',
      jsonPath: '.status.phase',
      description: 'Pending, InProgress, Succeeded or Failed.',
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
