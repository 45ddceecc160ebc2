// The VNC device of a domain (VirtualMachine spec.graphics, listening where the HostPool's
// spec.graphics.listen says), and where a running domain's VNC server listens, read back from
// its live XML: libvirt picks the port (autoport) or the socket path and resolves a network
// listen to an address on the host the domain runs on.
import type { HostPoolSpec } from '../api/hostpool.js';
import { DomainSpecError, libvirtName } from './domain-values.js';
import { child, childrenNamed, el, parseXml, type XmlElement } from './xml.js';

/** HostPool spec.graphics.listen; unset means a UNIX socket. */
export type GraphicsListen = NonNullable<HostPoolSpec['graphics']>['listen'];

/** Where a running domain's VNC server listens: a TCP address and port, or a socket on the host. */
export type VncListen = { address: string; port: number } | { socket: string };

export function graphicsElement(
  hypervisor: 'kvm' | 'xen',
  graphics: { type: string },
  listen: GraphicsListen | undefined,
): XmlElement {
  if (graphics.type !== 'vnc') {
    throw new DomainSpecError('spec.graphics.type', `${JSON.stringify(graphics.type)} is not vnc`);
  }
  // libxl resolves neither network nor socket listens; virtfleet does not offer VNC on Xen yet.
  if (hypervisor === 'xen') {
    throw new DomainSpecError(
      'spec.graphics',
      'VNC is offered for KVM guests only so far: remove spec.graphics, or set spec.hypervisor to kvm',
    );
  }
  if (listen?.network !== undefined && listen.socket !== undefined) {
    throw new DomainSpecError('graphics.listen', 'set network or socket, not both');
  }
  if (listen?.network !== undefined) {
    // port -1 + autoport: libvirt picks a free port from 5900 on the host.
    return el(
      'graphics',
      { type: 'vnc', port: -1, autoport: 'yes' },
      el('listen', { type: 'network', network: libvirtName('graphics.listen.network', listen.network) }),
    );
  }
  return el('graphics', { type: 'vnc' }, el('listen', { type: 'socket' }));
}

/** Where the VNC server of a running domain listens, from its live XML; undefined without one (or not known yet). */
export function vncListenOf(liveXml: string): VncListen | undefined {
  const devices = child(parseXml(liveXml), 'devices');
  const vnc = devices && childrenNamed(devices, 'graphics').find((g) => g.attrs.type === 'vnc');
  if (!vnc) return undefined;
  const listen = childrenNamed(vnc, 'listen')[0];
  const socket = listen?.attrs.type === 'socket' ? listen.attrs.socket : vnc.attrs.socket;
  if (socket) return { socket };
  const port = Number(vnc.attrs.port);
  const address = listen?.attrs.address ?? vnc.attrs.listen;
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !address) return undefined;
  return { address, port };
}
