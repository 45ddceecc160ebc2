// The resource types the controllers read and write, and the finalizer they own.
import type { HostPool } from '../api/hostpool.js';
import type { VirtualMachine } from '../api/virtualmachine.js';
import { GROUP, VERSION } from '../api/common.js';
import type { KubeObject, ResourceType } from '../runtime/kube-client.js';

export const VIRTUAL_MACHINE: ResourceType = {
  kind: 'VirtualMachine',
  group: GROUP,
  version: VERSION,
  plural: 'virtualmachines',
  namespaced: true,
};

export const HOST_POOL: ResourceType = {
  kind: 'HostPool',
  group: GROUP,
  version: VERSION,
  plural: 'hostpools',
  namespaced: false,
};

/** Held on every VirtualMachine until its domain is gone from its host. */
export const VM_FINALIZER = 'virtfleet.io/domain';

/** The API types as the runtime's generic cache holds them. */
export type VmObject = VirtualMachine & KubeObject;
export type PoolObject = HostPool & KubeObject;
