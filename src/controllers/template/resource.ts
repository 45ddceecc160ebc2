// The VirtualMachineTemplate resource as the controllers see it.
import { GROUP, VERSION } from '../../api/common.js';
import type { VirtualMachineTemplate } from '../../api/virtualmachinetemplate.js';
import type { KubeObject, ResourceType } from '../../runtime/kube-client.js';

export const VIRTUAL_MACHINE_TEMPLATE: ResourceType = {
  kind: 'VirtualMachineTemplate',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachinetemplates',
  namespaced: true,
};

export type TemplateObject = VirtualMachineTemplate & KubeObject;

/** Held on a template while VMs name it: a VM's effective spec never loses its source. */
export const TEMPLATE_FINALIZER = 'virtfleet.io/template-in-use';
