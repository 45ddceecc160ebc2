// Domain XML inputs that the unit tests parse back and the integration tests hand to
// virt-xml-validate and libvirt: KVM (accelerated and TCG) and Xen (HVM and PV), across firmware,
// CPU topologies and models, memory sizes, disks, networks, kernel boot and serial logging.
import type { DomainSpec, DomainXmlInput } from '../../src/hypervisors/domain-xml.js';

export const UID = '0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f';

type Disk = NonNullable<DomainSpec['disks']>[number];
type Nic = NonNullable<DomainSpec['networks']>[number];

export function disk(name: string, extra: Partial<Disk> = {}): Disk {
  return { name, bus: 'virtio', readOnly: false, retain: false, source: { blank: {} }, size: '1Gi', ...extra };
}

export function nic(name: string, extra: Partial<Nic> = {}): Nic {
  return { name, model: 'virtio', ...extra };
}

/** A small valid KVM input; cases override parts of it. */
export function kvmInput(overrides: Partial<DomainXmlInput> = {}, spec: Partial<DomainSpec> = {}): DomainXmlInput {
  return {
    uid: UID,
    namespace: 'default',
    name: 'web-1',
    spec: {
      cpu: { sockets: 1, cores: 1, threads: 1 },
      memory: '128Mi',
      firmware: { type: 'bios', secureBoot: false },
      disks: [disk('root')],
      networks: [nic('eth0')],
      ...spec,
    },
    target: { hypervisor: 'kvm', kvmUsable: false },
    disks: {
      root: { path: '/var/lib/virtfleet/images/root.qcow2', format: 'qcow2' },
      data: { path: '/var/lib/virtfleet/images/data.raw', format: 'raw' },
      seed: { path: '/var/lib/virtfleet/images/seed.raw', format: 'raw' },
      scratch: { path: '/var/lib/virtfleet/images/scratch.qcow2', format: 'qcow2' },
    },
    defaultNetwork: 'default',
    ...overrides,
  };
}

export function xenInput(
  mode: 'hvm' | 'pv',
  overrides: Partial<DomainXmlInput> = {},
  spec: Partial<DomainSpec> = {},
): DomainXmlInput {
  return kvmInput({ target: { hypervisor: 'xen' }, ...overrides }, { xen: { mode }, ...spec });
}

const KERNEL = {
  kernel: '/var/lib/virtfleet/boot/vmlinuz',
  initrd: '/var/lib/virtfleet/boot/initrd.img',
  cmdline: 'console=ttyS0 quiet',
};

export const MATRIX: [string, DomainXmlInput][] = [
  ['kvm, TCG, defaults', kvmInput()],
  ['kvm, accelerated, pc machine', kvmInput({ target: { hypervisor: 'kvm', kvmUsable: true, machine: 'pc' } })],
  [
    'kvm, emulator path',
    kvmInput({ target: { hypervisor: 'kvm', kvmUsable: false, emulator: '/usr/bin/qemu-system-x86_64' } }),
  ],
  ['kvm, uefi', kvmInput({}, { firmware: { type: 'uefi', secureBoot: false } })],
  ['kvm, uefi secure boot', kvmInput({}, { firmware: { type: 'uefi', secureBoot: true } })],
  [
    'kvm, 16 vCPUs host-passthrough',
    kvmInput({}, { cpu: { sockets: 2, cores: 4, threads: 2, model: 'host-passthrough' } }),
  ],
  ['kvm, host-model', kvmInput({}, { cpu: { sockets: 1, cores: 2, threads: 1, model: 'host-model' } })],
  ['kvm, custom CPU model', kvmInput({}, { cpu: { sockets: 1, cores: 4, threads: 1, model: 'Skylake-Server' } })],
  ['kvm, 512 vCPUs', kvmInput({}, { cpu: { sockets: 16, cores: 16, threads: 2 } })],
  ['kvm, 16Mi memory', kvmInput({}, { memory: '16Mi' })],
  ['kvm, 1.5Gi memory', kvmInput({}, { memory: '1.5Gi' })],
  ['kvm, decimal 1G memory', kvmInput({}, { memory: '1G' })],
  ['kvm, 16Ti memory', kvmInput({}, { memory: '16Ti' })],
  ['kvm, no disks or networks', kvmInput({}, { disks: [], networks: [] })],
  [
    'kvm, VNC on a libvirt network',
    kvmInput({ graphicsListen: { network: 'management' } }, { graphics: { type: 'vnc' } }),
  ],
  ['kvm, VNC on a UNIX socket', kvmInput({ graphicsListen: { socket: {} } }, { graphics: { type: 'vnc' } })],
  [
    'kvm, a virtlockd lease',
    kvmInput({ lease: { lockspaceDir: '/var/lib/libvirt/lockd/files', key: `virtfleet-${UID}` } }),
  ],
  [
    'xen, a virtlockd lease',
    xenInput('hvm', { lease: { lockspaceDir: '/srv/shared/lockspace/', key: `virtfleet-${UID}` } }),
  ],
  [
    'kvm, disks on every bus with boot order and read-only',
    kvmInput(
      {},
      {
        disks: [
          disk('root', { bootOrder: 2 }),
          disk('data', { bus: 'sata', bootOrder: 1 }),
          disk('seed', { bus: 'scsi', readOnly: true }),
          disk('scratch', { bus: 'virtio' }),
        ],
      },
    ),
  ],
  [
    'kvm, networks: default, named, bridge with MAC, e1000, rtl8139',
    kvmInput(
      {},
      {
        networks: [
          nic('eth0'),
          nic('eth1', { network: 'provisioning' }),
          nic('eth2', { bridge: 'br0', macAddress: '52:54:00:AB:cd:01' }),
          nic('eth3', { model: 'e1000' }),
          nic('eth4', { bridge: 'br-lan.10', model: 'rtl8139' }),
        ],
      },
    ),
  ],
  ['kvm, direct kernel boot', kvmInput({}, { kernelBoot: KERNEL, disks: [] })],
  [
    'kvm, kernel boot with quotes in cmdline',
    kvmInput({}, { kernelBoot: { ...KERNEL, cmdline: `a="b c" d='<e>' f=&g` } }),
  ],
  ['kvm, serial log file', kvmInput({ serialLogPath: '/var/log/virtfleet/default_web-1.log' })],
  ['kvm, no guest agent', kvmInput({ guestAgent: false })],
  ['kvm, long names', kvmInput({ namespace: 'n'.repeat(63), name: `${'a'.repeat(60)}.${'b'.repeat(60)}` })],
  ['xen hvm, defaults', xenInput('hvm')],
  [
    'xen hvm, uefi, 8 vCPUs host-passthrough',
    xenInput(
      'hvm',
      {},
      {
        firmware: { type: 'uefi', secureBoot: false },
        cpu: { sockets: 1, cores: 4, threads: 2, model: 'host-passthrough' },
      },
    ),
  ],
  [
    'xen hvm, sata disk and emulated NIC',
    xenInput(
      'hvm',
      {},
      {
        disks: [disk('root'), disk('data', { bus: 'sata', bootOrder: 1 })],
        networks: [nic('eth0', { model: 'e1000' }), nic('eth1', { bridge: 'xenbr0' })],
      },
    ),
  ],
  ['xen hvm, serial log file', xenInput('hvm', { serialLogPath: '/var/log/virtfleet/xen-hvm.log' })],
  ['xen hvm, 4Gi memory', xenInput('hvm', {}, { memory: '4Gi' })],
  ['xen pv, kernel boot', xenInput('pv', {}, { kernelBoot: KERNEL })],
  ['xen pv, bootloader', xenInput('pv', { target: { hypervisor: 'xen', bootloader: '/usr/lib/xen-4.17/bin/pygrub' } })],
  [
    'xen pv, two disks and bridge',
    xenInput(
      'pv',
      {},
      {
        kernelBoot: KERNEL,
        disks: [disk('root'), disk('data', { readOnly: true })],
        networks: [nic('eth0', { bridge: 'xenbr0' })],
      },
    ),
  ],
];
