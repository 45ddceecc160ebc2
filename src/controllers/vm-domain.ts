// The domain definition of a VirtualMachine on its host: the spec, plus the host-side facts
// buildDomainXml leaves to its caller (target, disk paths, the pool's default network).
//
// Disks: the controller gives the paths and formats of the volumes it provisioned
// (vm-storage.ts). Without them (callers that define no volumes, such as bench/scale), each disk
// gets the path its volume would have in a directory pool at spec.storage.path (else
// /var/lib/libvirt/images/<pool>), qcow2.
import type { HostPoolSpec } from '../api/hostpool.js';
import { buildDomainXml, type DiskBacking, type DomainTarget, type DomainXml } from '../hypervisors/domain-xml.js';
import { domainName } from '../hypervisors/domain-name.js';
import { volumeName } from './vm-storage.js';
import { CLOUD_INIT_SEED } from './vm/cloud-init.js';
import type { HostFacts } from '../hypervisors/hypervisor.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';
import type { VmObject } from './resources.js';

export const DEFAULT_IMAGE_DIR = '/var/lib/libvirt/images';

export function storageDir(storage: HostPoolSpec['storage']): string {
  return storage.path ?? `${DEFAULT_IMAGE_DIR}/${storage.pool}`;
}

export function diskBackings(vm: VmObject, storage: HostPoolSpec['storage']): Record<string, DiskBacking> {
  const { namespace = '', name = '', uid = '' } = vm.metadata;
  const base = domainName(namespace, name, uid);
  const dir = storageDir(storage);
  return Object.fromEntries(
    (vm.spec.disks ?? []).map((disk) => [
      disk.name,
      { path: `${dir}/${volumeName(base, disk.name)}`, format: 'qcow2' as const },
    ]),
  );
}

export function domainTarget(hypervisor: HypervisorType, facts: HostFacts): DomainTarget {
  // Where /dev/kvm does not work (or on the test driver), QEMU runs the guest in TCG.
  return hypervisor === 'kvm' ? { hypervisor: 'kvm', kvmUsable: facts.capabilities.kvm } : { hypervisor: 'xen' };
}

/** Throws DomainSpecError naming the field when a value cannot go into the XML. */
export function domainXmlFor(
  vm: VmObject,
  pool: HostPoolSpec,
  hypervisor: HypervisorType,
  facts: HostFacts,
  disks?: Record<string, DiskBacking>,
  /** 'network': the installer's PXE boot (install/flow.ts). */
  bootDevice?: 'network',
  /** A host file the serial console is copied to: the installer's (install/serial-log.ts). */
  serialLogPath?: string,
): DomainXml {
  const { namespace = '', name = '', uid = '' } = vm.metadata;
  // The disks step hands the cloud-init seed on among the disks, under a name no disk can have.
  const { [CLOUD_INIT_SEED]: seed, ...volumes } = disks ?? diskBackings(vm, pool.storage);
  return buildDomainXml({
    uid,
    namespace,
    name,
    spec: vm.spec,
    target: domainTarget(hypervisor, facts),
    disks: volumes,
    ...(seed ? { seed: { ...seed, bus: vm.spec.cloudInit?.bus ?? 'virtio' } } : {}),
    defaultNetwork: pool.network.name,
    ...(bootDevice ? { bootDevice } : {}),
    ...(serialLogPath ? { serialLogPath } : {}),
    ...(pool.graphics ? { graphicsListen: pool.graphics.listen } : {}),
    ...(pool.leases ? { lease: { lockspaceDir: pool.leases.lockspace, key: leaseKey(uid) } } : {}),
  });
}

/** The VM's lease resource in the lockspace (a file of that name): one per VM, by UID. */
export function leaseKey(uid: string): string {
  return `virtfleet-${uid}`;
}
