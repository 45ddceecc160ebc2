// VirtualMachineTemplate (vmtemplate): what VMs stamped from it start with — size, disks (a root
// disk from a VirtualMachineImage, typically), networks, cloud-init, an install profile,
// graphics. A VM names it in spec.templateRef; the VM's own fields win (the merge is in
// src/controllers/template/merge.ts, and docs/images.md says why this shape).
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  AGE_COLUMN,
  conditionColumn,
  conditions,
  dnsSubdomain,
  int,
  listOf,
  obj,
  type ResourceDefinition,
} from './common.js';
import { VirtualMachineSpecSchema } from './virtualmachine.js';

const vm = VirtualMachineSpecSchema.properties;

/** The fields a template may set: those of a VM spec that say what a VM is, not where or how it runs. */
export const TEMPLATE_FIELDS = ['memory', 'cpu', 'disks', 'networks', 'cloudInit', 'install', 'graphics'] as const;

export const VirtualMachineTemplateSpecSchema = obj(
  "Fields of a VirtualMachine spec that VMs naming this template in spec.templateRef take when they do not set them: the VM's own fields win, " +
    "field by field; disks and networks merge by name (a VM entry of the same name replaces the template's); cloudInit, install and graphics as a whole. " +
    'A change reaches running VMs at their next start: RestartRequired names the fields.',
  {
    memory: Type.Optional(vm.memory),
    cpu: Type.Optional(vm.cpu),
    disks: Type.Optional(vm.disks),
    networks: Type.Optional(vm.networks),
    cloudInit: Type.Optional(vm.cloudInit),
    install: Type.Optional(vm.install),
    graphics: Type.Optional(vm.graphics),
  },
);

export const VirtualMachineTemplateStatusSchema = obj('Written by the controller.', {
  usedBy: Type.Optional(
    listOf(
      'VirtualMachines of the namespace that name this template (the first 100). While there are any, deleting the template waits (finalizer virtfleet.io/template-in-use).',
      dnsSubdomain('Name of the VM.'),
      { maxItems: 100 },
    ),
  ),
  usedByCount: Type.Optional(int('How many VMs name this template.', { minimum: 0 })),
  conditions: Type.Optional(
    conditions(
      'Ready: True when every VM that names it can take it (reason Valid); False with reason VmsRefused, naming the VMs, when some cannot ' +
        '(the VM and the template merged break a rule): Stalled=True beside it until the template or the VMs change.',
    ),
  ),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the status was computed from.', { format: 'int64', minimum: 0 }),
  ),
});

export type VirtualMachineTemplateSpec = Static<typeof VirtualMachineTemplateSpecSchema>;
export type VirtualMachineTemplateStatus = Static<typeof VirtualMachineTemplateStatusSchema>;

export interface VirtualMachineTemplate {
  apiVersion: 'virtfleet.io/v1alpha1';
  kind: 'VirtualMachineTemplate';
  metadata: V1ObjectMeta;
  spec: VirtualMachineTemplateSpec;
  status?: VirtualMachineTemplateStatus;
}

export const virtualMachineTemplateResource: ResourceDefinition = {
  kind: 'VirtualMachineTemplate',
  plural: 'virtualmachinetemplates',
  singular: 'virtualmachinetemplate',
  listKind: 'VirtualMachineTemplateList',
  shortNames: ['vmtemplate'],
  scope: 'Namespaced',
  categories: ['virtfleet'],
  description:
    'What VirtualMachines naming it in spec.templateRef start with (memory, cpu, disks, networks, cloudInit, install, graphics); ' +
    "the VM's own fields win, and status.template of each VM says what it took.",
  spec: VirtualMachineTemplateSpecSchema,
  status: VirtualMachineTemplateStatusSchema,
  printerColumns: [
    { name: 'Memory', type: 'string', jsonPath: '.spec.memory', description: 'Memory of its VMs.' },
    { name: 'VMs', type: 'integer', jsonPath: '.status.usedByCount', description: 'VMs that name it.' },
    conditionColumn('Ready', 'Whether every VM that names it can take it.'),
    AGE_COLUMN,
  ],
};
