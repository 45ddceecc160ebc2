// The <devices> of a domain: disks, NICs, serial console, VNC (domain-graphics.ts), guest agent channel.
import { createHash } from 'node:crypto';
import type { DiskBacking, DomainXmlInput } from './domain-xml.js';
import {
  DomainSpecError,
  dnsLabel,
  hostPath,
  integer,
  interfaceName,
  libvirtName,
  macAddress,
} from './domain-values.js';
import { graphicsElement } from './domain-graphics.js';
import { el, type XmlElement } from './xml.js';

export const GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0';
const MAX_DISKS = 32;
const MAX_NICS = 16;

type Hypervisor = 'kvm' | 'xen';

export function devices(input: DomainXmlInput, domainUuid: string, xenPv: boolean): XmlElement {
  const { target } = input;
  const kvm = target.hypervisor === 'kvm';
  const disks = diskElements(input, xenPv);
  return el(
    'devices',
    {},
    target.emulator !== undefined && !xenPv && el('emulator', {}, hostPath('target.emulator', target.emulator)),
    ...disks,
    ...seedElements(input, disks, xenPv),
    input.lease && leaseElement(input.lease),
    kvm &&
      disks.some((disk) => disk.children.some((c) => c.name === 'target' && c.attrs.bus === 'scsi')) &&
      el('controller', { type: 'scsi', index: 0, model: 'virtio-scsi' }),
    ...interfaceElements(input, domainUuid, xenPv),
    ...consoleElements(input, xenPv),
    input.spec.graphics && graphicsElement(target.hypervisor, input.spec.graphics, input.graphicsListen),
    kvm &&
      input.guestAgent !== false &&
      el(
        'channel',
        { type: 'unix' },
        el('source', { mode: 'bind' }),
        el('target', { type: 'virtio', name: GUEST_AGENT_CHANNEL }),
      ),
    kvm && el('memballoon', { model: 'virtio' }),
  );
}

/**
 * libvirt names a lease's lockspace as a directory (target path) and a lockspace name in it;
 * virtlockd joins them: the lockspace is `<target path>/<lockspace>`, which must be the directory
 * the hosts' virtlockd has as its lockspace (file_lockspace_dir).
 */
function leaseElement(lease: NonNullable<DomainXmlInput['lease']>): XmlElement {
  const dir = hostPath('spec.leases.lockspace', lease.lockspaceDir).replace(/\/$/, '');
  const at = dir.lastIndexOf('/');
  if (at <= 0)
    throw new DomainSpecError(
      'spec.leases.lockspace',
      `${JSON.stringify(dir)} is not a directory below / (e.g. /var/lib/libvirt/lockd/files)`,
    );
  return el(
    'lease',
    {},
    el('lockspace', {}, dir.slice(at + 1)),
    el('key', {}, libvirtName('lease key', lease.key)),
    el('target', { path: dir.slice(0, at) }),
  );
}

// Bus names the guest sees, per spec bus and hypervisor. Xen's paravirtual disks play the part
// virtio plays for KVM; its HVM guests also have emulated IDE (for 'sata') and SCSI.
const DISK_BUS: Record<Hypervisor, Record<string, { bus: string; prefix: string } | undefined>> = {
  kvm: {
    virtio: { bus: 'virtio', prefix: 'vd' },
    sata: { bus: 'sata', prefix: 'sd' },
    scsi: { bus: 'scsi', prefix: 'sd' },
  },
  xen: {
    virtio: { bus: 'xen', prefix: 'xvd' },
    sata: { bus: 'ide', prefix: 'hd' },
    scsi: { bus: 'scsi', prefix: 'sd' },
  },
};

/** vda, vdb, …, vdz, vdaa, …: the naming libvirt and Linux use for the n-th disk on a bus. */
export function diskDeviceName(prefix: string, index: number): string {
  let suffix = '';
  let n = index;
  do {
    suffix = String.fromCharCode(97 + (n % 26)) + suffix;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return prefix + suffix;
}

function diskElements(input: DomainXmlInput, xenPv: boolean): XmlElement[] {
  const disks = input.spec.disks ?? [];
  if (disks.length > MAX_DISKS)
    throw new DomainSpecError('spec.disks', `has ${disks.length} disks; at most ${MAX_DISKS} are allowed`);
  const perPrefix = new Map<string, number>();
  const seen = new Set<string>();
  return disks.map((disk, i) => {
    const field = `spec.disks[${i}]`;
    const diskName = dnsLabel(`${field}.name`, disk.name);
    if (seen.has(diskName))
      throw new DomainSpecError(`${field}.name`, `${JSON.stringify(diskName)} is used by two disks`);
    seen.add(diskName);
    const bus = DISK_BUS[input.target.hypervisor][disk.bus];
    if (!bus) throw new DomainSpecError(`${field}.bus`, `${JSON.stringify(disk.bus)} is not virtio, sata or scsi`);
    if (xenPv && disk.bus !== 'virtio') {
      throw new DomainSpecError(`${field}.bus`, 'Xen PV guests have only paravirtual disks: set bus to virtio (xvd*)');
    }
    const backing = input.disks?.[diskName];
    if (!backing)
      throw new DomainSpecError(`disks.${diskName}`, `no image was provided for disk ${JSON.stringify(diskName)}`);
    if (disk.type === 'cdrom') return cdromDisk(input, disk, i, backing, perPrefix, xenPv);
    if (backing.format !== 'qcow2' && backing.format !== 'raw') {
      throw new DomainSpecError(`disks.${diskName}.format`, `${JSON.stringify(backing.format)} is not qcow2 or raw`);
    }
    const index = perPrefix.get(bus.prefix) ?? 0;
    perPrefix.set(bus.prefix, index + 1);
    return el(
      'disk',
      { type: 'file', device: 'disk' },
      el('driver', { name: 'qemu', type: backing.format }),
      el('source', { file: hostPath(`disks.${diskName}.path`, backing.path) }),
      el('target', { dev: diskDeviceName(bus.prefix, index), bus: bus.bus }),
      disk.bootOrder !== undefined && el('boot', { order: integer(`${field}.bootOrder`, disk.bootOrder, 1, 32) }),
      disk.readOnly && el('readonly'),
    );
  });
}

/**
 * A spec disk of type cdrom: read-only, raw (an ISO image), on the bus a disk of bus sata gets
 * (IDE on Xen HVM) unless it asks for scsi; virtio has no CD-ROM. Its bootOrder is honoured as a
 * disk's is, so a VM boots from its installer and then, with the CD-ROM gone, from its disk.
 */
function cdromDisk(
  input: DomainXmlInput,
  disk: NonNullable<DomainXmlInput['spec']['disks']>[number],
  i: number,
  backing: DiskBacking,
  perPrefix: Map<string, number>,
  xenPv: boolean,
): XmlElement {
  const field = `spec.disks[${i}]`;
  if (xenPv)
    throw new DomainSpecError(
      `${field}.type`,
      'Xen PV guests have no CD-ROM: set xen.mode to hvm, or run the VM on KVM',
    );
  const bus = DISK_BUS[input.target.hypervisor][disk.bus === 'scsi' ? 'scsi' : 'sata']!;
  const index = perPrefix.get(bus.prefix) ?? 0;
  perPrefix.set(bus.prefix, index + 1);
  return el(
    'disk',
    { type: 'file', device: 'cdrom' },
    el('driver', { name: 'qemu', type: 'raw' }),
    el('source', { file: hostPath(`disks.${disk.name}.path`, backing.path) }),
    el('target', { dev: diskDeviceName(bus.prefix, index), bus: bus.bus }),
    disk.bootOrder !== undefined && el('boot', { order: integer(`${field}.bootOrder`, disk.bootOrder, 1, 32) }),
    el('readonly'),
  );
}

/**
 * The cloud-init seed, read-only, after the disks and named after those on its bus. On virtio
 * (the default) it is a disk: every guest kernel with virtio-blk (or Xen's blkfront) sees it,
 * also the many cloud kernels built without an AHCI or IDE driver, and NoCloud finds it by its
 * cidata label on any block device. On sata it is a CD-ROM (IDE on Xen HVM), for guests without
 * paravirtual drivers; Xen PV guests have no CD-ROM.
 */
function seedElements(input: DomainXmlInput, disks: XmlElement[], xenPv: boolean): XmlElement[] {
  const seed = input.seed;
  if (!seed) return [];
  if (seed.bus === 'sata' && xenPv)
    throw new DomainSpecError(
      'spec.cloudInit.bus',
      'Xen PV guests have no CD-ROM for the cloud-init seed: set bus to virtio (a read-only xvd disk), or xen.mode to hvm',
    );
  const bus = DISK_BUS[input.target.hypervisor][seed.bus];
  if (!bus) throw new DomainSpecError('spec.cloudInit.bus', `${JSON.stringify(seed.bus)} is not virtio or sata`);
  const index = disks.filter((disk) =>
    disk.children.some((c) => c.name === 'target' && String(c.attrs.dev).startsWith(bus.prefix)),
  ).length;
  return [
    el(
      'disk',
      { type: 'file', device: seed.bus === 'sata' ? 'cdrom' : 'disk' },
      el('driver', { name: 'qemu', type: 'raw' }),
      el('source', { file: hostPath('seed.path', seed.path) }),
      el('target', { dev: diskDeviceName(bus.prefix, index), bus: bus.bus }),
      el('readonly'),
    ),
  ];
}

// Prefixes each hypervisor's own tools use for generated MACs.
const MAC_PREFIX: Record<Hypervisor, readonly number[]> = { kvm: [0x52, 0x54, 0x00], xen: [0x00, 0x16, 0x3e] };

/** A stable MAC for a NIC without one: the hypervisor's prefix + 3 bytes of SHA-256(uid/nic). */
export function derivedMac(hypervisor: Hypervisor, uid: string, nic: string): string {
  const digest = createHash('sha256').update(`${uid}/${nic}`).digest();
  return [...MAC_PREFIX[hypervisor], ...digest.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function interfaceElements(input: DomainXmlInput, domainUuid: string, xenPv: boolean): XmlElement[] {
  const nics = input.spec.networks ?? [];
  if (nics.length > MAX_NICS)
    throw new DomainSpecError('spec.networks', `has ${nics.length} interfaces; at most ${MAX_NICS} are allowed`);
  const hypervisor = input.target.hypervisor;
  const seen = new Set<string>();
  return nics.map((nic, i) => {
    const field = `spec.networks[${i}]`;
    const nicName = dnsLabel(`${field}.name`, nic.name);
    if (seen.has(nicName))
      throw new DomainSpecError(`${field}.name`, `${JSON.stringify(nicName)} is used by two interfaces`);
    seen.add(nicName);
    if (nic.network !== undefined && nic.bridge !== undefined)
      throw new DomainSpecError(`${field}.bridge`, 'set network or bridge, not both');
    const mac =
      nic.macAddress !== undefined
        ? macAddress(`${field}.macAddress`, nic.macAddress)
        : derivedMac(hypervisor, domainUuid, nicName);
    const model = nicModel(hypervisor, xenPv, nic.model, `${field}.model`);
    return el(
      'interface',
      { type: nic.bridge !== undefined ? 'bridge' : 'network' },
      nic.bridge !== undefined
        ? el('source', { bridge: interfaceName(`${field}.bridge`, nic.bridge) })
        : el('source', { network: networkName(input, nic.network, field) }),
      el('mac', { address: mac }),
      model !== undefined && el('model', { type: model }),
    );
  });
}

function networkName(input: DomainXmlInput, network: string | undefined, field: string): string {
  if (network !== undefined) return libvirtName(`${field}.network`, network);
  if (input.defaultNetwork === undefined) {
    throw new DomainSpecError(
      `${field}.network`,
      'names neither network nor bridge, and the HostPool gives no default network',
    );
  }
  return libvirtName('defaultNetwork', input.defaultNetwork);
}

function nicModel(hypervisor: Hypervisor, xenPv: boolean, model: string, field: string): string | undefined {
  if (model !== 'virtio' && model !== 'e1000' && model !== 'rtl8139') {
    throw new DomainSpecError(field, `${JSON.stringify(model)} is not virtio, e1000 or rtl8139`);
  }
  if (hypervisor === 'kvm') return model;
  // Xen: 'virtio' stands for the paravirtual NIC (netfront), libxl's default when no model is given.
  if (model === 'virtio') return undefined;
  if (xenPv) throw new DomainSpecError(field, 'Xen PV guests have only the paravirtual NIC: set model to virtio');
  return model;
}

function consoleElements(input: DomainXmlInput, xenPv: boolean): XmlElement[] {
  if (xenPv) return [el('console', { type: 'pty' }, el('target', { type: 'xen', port: 0 }))];
  const logPath = input.serialLogPath === undefined ? undefined : hostPath('serialLogPath', input.serialLogPath);
  if (input.target.hypervisor === 'xen' && logPath !== undefined) {
    // libxl has no <log> for character devices: the serial port itself writes to the file.
    return [el('serial', { type: 'file' }, el('source', { path: logPath }), el('target', { port: 0 }))];
  }
  return [
    el(
      'serial',
      { type: 'pty' },
      el('target', { port: 0 }),
      logPath !== undefined && el('log', { file: logPath, append: 'on' }),
    ),
    el('console', { type: 'pty' }, el('target', { type: 'serial', port: 0 })),
  ];
}
