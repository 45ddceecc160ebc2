// libvirt domain XML for a VirtualMachine: KVM/QEMU (the qemu driver) and Xen (the libxl
// driver, HVM and PV).
//
// Built as a tree of el() nodes and serialized by fast-xml-parser (xml.ts), never by pasting
// strings: the library escapes every text and attribute value. Element and attribute *names* are
// always constants here; user values are only ever text or attribute values, and each first
// passes a check in domain-values.ts that names the field it came from and refuses what XML
// cannot carry or libvirt would misread (control characters, '..' in paths, absurd sizes).
//
// Choices that matter to the controllers:
// - <uuid> is the VM object's UID, so a retried reconcile finds the domain it already made.
// - on_crash is destroy: the controller, not libvirt, decides whether and where to restart.
// - A NIC without a MAC gets one derived from the UID and NIC name, so a redefinition keeps it
//   (libvirt would otherwise pick a new random one on every define).
// - spec.graphics is a VNC server on a libvirt network's address or a UNIX socket, never a fixed
//   address: a live migration must be able to take it to a host with another address.
// - The serial console is a pty (the console stream reads it); with `serialLogPath` QEMU also
//   copies it to a file, which is how tests and humans read a guest's boot output.
import type { VirtualMachineSpec } from '../api/virtualmachine.js';
import { devices } from './domain-devices.js';
import type { GraphicsListen } from './domain-graphics.js';
import { domainName } from './domain-name.js';
import { DomainSpecError, cpuModel, hostPath, integer, kernelCmdline, memoryKiB, uuid } from './domain-values.js';
import { el, serializeXml, type XmlElement } from './xml.js';

export { derivedMac, diskDeviceName } from './domain-devices.js';

/** The parts of a VirtualMachine spec that shape the domain (defaults applied, as the API server returns it). */
export type DomainSpec = Pick<
  VirtualMachineSpec,
  'cpu' | 'memory' | 'firmware' | 'xen' | 'kernelBoot' | 'disks' | 'networks' | 'graphics'
>;

/** A disk image the caller made (or found) on the host for one of spec.disks. */
export interface DiskBacking {
  path: string;
  format: 'qcow2' | 'raw';
}

/** Where the domain runs and how: facts about the chosen host, resolved by the caller. */
export type DomainTarget =
  | {
      hypervisor: 'kvm';
      /** Whether /dev/kvm works on the host: true → <domain type='kvm'>, false → 'qemu' (TCG). */
      kvmUsable: boolean;
      /** QEMU machine type; default q35 (needed for Secure Boot). */
      machine?: 'q35' | 'pc';
      /** The QEMU binary, when the host's default is not wanted. */
      emulator?: string;
    }
  | {
      hypervisor: 'xen';
      /** Xen PV guests without spec.kernelBoot boot through this host program, e.g. pygrub. */
      bootloader?: string;
      /** The device model binary for HVM guests, when the host's default is not wanted. */
      emulator?: string;
    };

export interface DomainXmlInput {
  /** metadata.uid: becomes the domain UUID. */
  uid: string;
  namespace: string;
  name: string;
  spec: DomainSpec;
  target: DomainTarget;
  /** Image of each spec.disks[] entry, by disk name. */
  disks?: Record<string, DiskBacking>;
  /**
   * The cloud-init seed (spec.cloudInit), read-only, after the disks: on bus 'virtio' a disk (vd*
   * on KVM, xvd* on Xen), on 'sata' a CD-ROM (SATA on KVM, IDE on Xen HVM; Xen PV has none).
   */
  seed?: DiskBacking & { bus: 'virtio' | 'sata' };
  /** The network joined by interfaces that name neither network nor bridge (HostPool spec.network.name). */
  defaultNetwork?: string;
  /** Also copy the serial console to this host file (KVM, and Xen HVM through a file-backed serial port). */
  serialLogPath?: string;
  /** Add the QEMU guest agent channel (KVM only; libvirt speaks to the agent only through QEMU). Default true. */
  guestAgent?: boolean;
  /**
   * 'network': boot from the network (PXE, <os><boot dev='network'/>) instead of the first disk;
   * an installer's boot. Not with spec.kernelBoot or a disk's bootOrder.
   */
  bootDevice?: 'network';
  /**
   * A lock-manager lease for the whole VM (virtlockd, HostPool spec.leases): the directory that is
   * the hosts' lockspace and the resource's name in it. Held by the host whose copy runs; a
   * second copy cannot start, and a migration's source cannot resume once the destination holds it.
   */
  lease?: { lockspaceDir: string; key: string };
  /** Where spec.graphics listens (HostPool spec.graphics.listen); unset: a UNIX socket on the host. */
  graphicsListen?: GraphicsListen;
}

export interface DomainXml {
  /** The domain name (see domain-name.ts). */
  name: string;
  /** The domain UUID: the VM's UID. */
  uuid: string;
  xml: string;
}

/** Namespace of the <metadata> element that records which VM object a domain belongs to. */
export const METADATA_NAMESPACE = 'https://virtfleet.io/xmlns/domain/v1alpha1';

const MIN_MEMORY_KIB = 16 * 1024; // 16Mi, as the API's lower bound
const MAX_MEMORY_KIB = 16 * 1024 ** 3; // 16Ti
const MAX_VCPUS = 512;

/** Builds the domain XML; throws DomainSpecError naming the field of the first value it refuses. */
export function buildDomainXml(input: DomainXmlInput): DomainXml {
  const domainUuid = uuid('metadata.uid', input.uid);
  const name = domainName(input.namespace, input.name, domainUuid);
  const { spec, target } = input;
  const xenPv = target.hypervisor === 'xen' && spec.xen?.mode === 'pv';
  checkCombinations(input, xenPv);
  const kib = String(memoryKiB('spec.memory', spec.memory, MIN_MEMORY_KIB, MAX_MEMORY_KIB));
  const topology = cpuTopology(spec.cpu);

  const domain = el(
    'domain',
    { type: domainType(target) },
    el('name', {}, name),
    el('uuid', {}, domainUuid),
    // namespace/name are a DNS label and subdomain (checked by domainName), so the title is one line.
    el('title', {}, `${input.namespace}/${input.name}`),
    el(
      'metadata',
      {},
      el('vf:vm', { 'xmlns:vf': METADATA_NAMESPACE, namespace: input.namespace, name: input.name, uid: domainUuid }),
    ),
    el('memory', { unit: 'KiB' }, kib),
    el('currentMemory', { unit: 'KiB' }, kib),
    el('vcpu', { placement: 'static' }, String(topology.sockets * topology.cores * topology.threads)),
    xenPv && !spec.kernelBoot && target.hypervisor === 'xen' && target.bootloader !== undefined
      ? el('bootloader', {}, hostPath('target.bootloader', target.bootloader))
      : undefined,
    os(input, xenPv),
    xenPv ? undefined : features(input),
    xenPv ? undefined : cpu(spec.cpu.model, topology),
    el('clock', { offset: 'utc' }),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    devices(input, domainUuid, xenPv),
  );
  return { name, uuid: domainUuid, xml: serializeXml(domain) };
}

function checkCombinations(input: DomainXmlInput, xenPv: boolean): void {
  const { spec, target } = input;
  if (spec.xen !== undefined && target.hypervisor !== 'xen') {
    throw new DomainSpecError('spec.xen', 'applies only to Xen guests, but the VM is placed on a KVM host');
  }
  if (target.hypervisor === 'xen' && spec.cpu.model !== undefined && spec.cpu.model !== 'host-passthrough') {
    throw new DomainSpecError(
      'spec.cpu.model',
      'Xen (libxl) guests take only host-passthrough or no model; remove the model or run the VM on KVM',
    );
  }
  if (target.hypervisor === 'xen' && spec.firmware.secureBoot) {
    throw new DomainSpecError(
      'spec.firmware.secureBoot',
      'Secure Boot is not available for Xen guests in libvirt; set it to false or run the VM on KVM',
    );
  }
  if (xenPv && spec.firmware.type === 'uefi') {
    throw new DomainSpecError(
      'spec.firmware.type',
      'Xen PV guests boot without firmware: set firmware.type to bios, or xen.mode to hvm',
    );
  }
  if (xenPv && spec.kernelBoot === undefined && !(target.hypervisor === 'xen' && target.bootloader !== undefined)) {
    throw new DomainSpecError(
      'spec.kernelBoot',
      'a Xen PV guest needs a kernel to boot: set spec.kernelBoot, or give the host a PV bootloader such as pygrub',
    );
  }
  if (
    input.bootDevice === 'network' &&
    (spec.kernelBoot !== undefined || xenPv || (spec.disks ?? []).some((disk) => disk.bootOrder !== undefined))
  ) {
    throw new DomainSpecError(
      'bootDevice',
      'a network boot goes with neither spec.kernelBoot, a Xen PV guest, nor a disk bootOrder',
    );
  }
  if (xenPv && input.serialLogPath !== undefined) {
    throw new DomainSpecError(
      'serialLogPath',
      'Xen PV guests have no serial port to log; their console is logged by xenconsoled on the host',
    );
  }
}

function domainType(target: DomainTarget): string {
  if (target.hypervisor === 'xen') return 'xen';
  return target.kvmUsable ? 'kvm' : 'qemu';
}

interface Topology {
  sockets: number;
  cores: number;
  threads: number;
}

function cpuTopology(spec: DomainSpec['cpu']): Topology {
  const topology = {
    sockets: integer('spec.cpu.sockets', spec.sockets, 1, 16),
    cores: integer('spec.cpu.cores', spec.cores, 1, 256),
    threads: integer('spec.cpu.threads', spec.threads, 1, 8),
  };
  if (topology.sockets * topology.cores * topology.threads > MAX_VCPUS) {
    throw new DomainSpecError('spec.cpu', `cores × sockets × threads must be at most ${MAX_VCPUS} vCPUs`);
  }
  return topology;
}

function cpu(model: string | undefined, topology: Topology): XmlElement {
  const shape = el('topology', {
    sockets: topology.sockets,
    dies: 1,
    cores: topology.cores,
    threads: topology.threads,
  });
  if (model === undefined) return el('cpu', {}, shape);
  if (model === 'host-passthrough' || model === 'host-model') return el('cpu', { mode: model }, shape);
  // fallback='forbid': a host without the model must refuse the guest, not quietly give it another CPU.
  return el(
    'cpu',
    { mode: 'custom', match: 'exact', check: 'partial' },
    el('model', { fallback: 'forbid' }, cpuModel('spec.cpu.model', model)),
    shape,
  );
}

function os(input: DomainXmlInput, xenPv: boolean): XmlElement {
  const { spec, target } = input;
  const uefi = spec.firmware.type === 'uefi';
  const secure = spec.firmware.secureBoot ? 'yes' : 'no';
  const kernel = spec.kernelBoot;
  let type: XmlElement;
  if (xenPv) type = el('type', { arch: 'x86_64', machine: 'xenpv' }, 'xen');
  else if (target.hypervisor === 'xen') type = el('type', { arch: 'x86_64', machine: 'xenfv' }, 'hvm');
  else type = el('type', { arch: 'x86_64', machine: target.machine ?? 'q35' }, 'hvm');
  // Boot order: per-disk <boot order> when any disk asks for one (libvirt forbids mixing it with
  // <os><boot>); otherwise the first disk. Xen PV boots its kernel or bootloader, never a device.
  const anyOrder = (spec.disks ?? []).some((disk) => disk.bootOrder !== undefined);
  const bootNetwork = input.bootDevice === 'network';
  const bootFirstDisk = !xenPv && !kernel && !anyOrder && !bootNetwork && (spec.disks?.length ?? 0) > 0;
  return el(
    'os',
    // firmware='efi' lets libvirt pick the OVMF build and NVRAM template the host has (firmware
    // autoselection), so the XML names no firmware paths.
    { firmware: uefi ? 'efi' : undefined },
    type,
    uefi &&
      el(
        'firmware',
        {},
        el('feature', { enabled: secure, name: 'enrolled-keys' }),
        el('feature', { enabled: secure, name: 'secure-boot' }),
      ),
    kernel && el('kernel', {}, hostPath('spec.kernelBoot.kernel', kernel.kernel)),
    kernel?.initrd !== undefined && el('initrd', {}, hostPath('spec.kernelBoot.initrd', kernel.initrd)),
    kernel?.cmdline !== undefined && el('cmdline', {}, kernelCmdline('spec.kernelBoot.cmdline', kernel.cmdline)),
    bootFirstDisk && el('boot', { dev: 'hd' }),
    bootNetwork && el('boot', { dev: 'network' }),
  );
}

function features(input: DomainXmlInput): XmlElement {
  return el(
    'features',
    {},
    el('acpi'),
    el('apic'),
    input.target.hypervisor === 'xen' && el('pae'),
    // Secure Boot firmware needs System Management Mode to protect its variables.
    input.spec.firmware.secureBoot && el('smm', { state: 'on' }),
  );
}
