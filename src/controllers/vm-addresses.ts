// status.addresses from what the host reports of a running guest's interfaces (DHCP leases of
// its libvirt network, or the guest agent), named by the spec.networks entry each belongs to.
// Pure: the reconciler asks the host; this matches MACs against the running definition.
import type { VirtualMachineSpec, VirtualMachineStatus } from '../api/virtualmachine.js';
import type { GuestInterface } from '../hypervisors/hypervisor.js';
import { child, childrenNamed, parseXml } from '../hypervisors/xml.js';

export type Address = NonNullable<VirtualMachineStatus['addresses']>[number];

/** MAC (lower case) → spec.networks[].name, from the running domain's interfaces (spec order). */
export function interfaceNamesByMac(liveXml: string, networks: VirtualMachineSpec['networks']): Map<string, string> {
  const devices = child(parseXml(liveXml), 'devices');
  const nics = devices ? childrenNamed(devices, 'interface') : [];
  const names = new Map<string, string>();
  nics.forEach((nic, index) => {
    const mac = child(nic, 'mac')?.attrs.address?.toLowerCase();
    const name = networks?.[index]?.name;
    if (mac && name) names.set(mac, name);
  });
  return names;
}

/** Loopback and IPv6 link-local addresses say nothing about where to reach the guest. */
function reachable(address: string): boolean {
  return !address.startsWith('127.') && address !== '::1' && !address.toLowerCase().startsWith('fe80:');
}

/** The guest's addresses on its spec.networks interfaces; interfaces the spec does not name are left out. */
export function guestAddresses(interfaces: GuestInterface[], names: Map<string, string>): Address[] {
  const addresses: Address[] = [];
  for (const nic of interfaces) {
    const name = names.get(nic.mac.toLowerCase());
    if (!name) continue;
    for (const address of nic.addresses) {
      if (reachable(address.address))
        addresses.push({ interface: name, ip: address.address, mac: nic.mac.toLowerCase() });
    }
  }
  // Spec order of interfaces, then the order the host gave: stable, so an unchanged set writes nothing.
  const order = [...names.values()];
  return addresses.sort((a, b) => order.indexOf(a.interface) - order.indexOf(b.interface)).slice(0, 64);
}
