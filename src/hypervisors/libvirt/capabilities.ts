// The summary of libvirt's capabilities XML that placement needs: which guests a host can run.
import type { CapabilitiesSummary } from '../hypervisor.js';
import { child, childrenNamed, parseXml } from '../xml.js';

export function summarizeCapabilities(xml: string): CapabilitiesSummary {
  const root = parseXml(xml);
  const arch = child(root, 'host', 'cpu', 'arch')?.text.trim() ?? 'unknown';
  const guests = childrenNamed(root, 'guest').flatMap((guest) => {
    const osType = child(guest, 'os_type')?.text.trim() ?? 'unknown';
    return childrenNamed(guest, 'arch').map((guestArch) => ({
      osType,
      arch: guestArch.attrs.name ?? 'unknown',
      domainTypes: childrenNamed(guestArch, 'domain').map((domain) => domain.attrs.type ?? 'unknown'),
    }));
  });
  return {
    arch,
    guests,
    kvm: guests.some((guest) => guest.domainTypes.includes('kvm')),
    xenPv: guests.some((guest) => guest.osType === 'xen'),
  };
}
