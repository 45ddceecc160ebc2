// The kinds of the virtfleet.io API, in one list for the CRD generator and the validator.
import type { ResourceDefinition } from './common.js';
import { hostPoolResource } from './hostpool.js';
import { installProfileResource } from './installprofile.js';
import { virtualMachineResource } from './virtualmachine.js';
import { virtualMachineRestoreResource } from './virtualmachinerestore.js';
import { virtualMachineSnapshotResource } from './virtualmachinesnapshot.js';
import { virtualMachineSnapshotScheduleResource } from './virtualmachinesnapshotschedule.js';
import { virtualMachineImageResource } from './virtualmachineimage.js';
import { virtualMachineTemplateResource } from './virtualmachinetemplate.js';

export const RESOURCES: readonly ResourceDefinition[] = [
  virtualMachineResource,
  hostPoolResource,
  installProfileResource,
  virtualMachineSnapshotResource,
  virtualMachineRestoreResource,
  virtualMachineSnapshotScheduleResource,
  virtualMachineImageResource,
  virtualMachineTemplateResource,
];

export function resourceByKind(kind: string): ResourceDefinition | undefined {
  return RESOURCES.find((resource) => resource.kind === kind);
}
