// Domain XML for the rig's tiny guest, written with the project's XML module
// (no XML is built by pasting strings together). The guest needs what a VM
// spec does not describe (a second serial port as a command socket, no USB or
// balloon), so it does not go through buildDomainXml.
import { el, serialize, type Child } from '../harness/xml.js';

export { el, serialize };

export interface GuestDomainSpec {
  name: string;
  uuid: string;
  kernel: string;
  initrd: string;
  /** ttyS0: the console, written to this file by QEMU. */
  serialLog: string;
  /** ttyS1: the guest's command server, a UNIX socket QEMU listens on. */
  commandSocket?: string;
  memoryMiB?: number;
  /** Raw disk images to attach (they exercise the hosts' disk leases). */
  disks?: string[];
}

/** A direct-kernel-boot TCG domain (type 'qemu': this machine has no usable KVM). */
export function guestDomainXml(spec: GuestDomainSpec): string {
  const devices: Child[] = [
    el('emulator', {}, '/usr/bin/qemu-system-x86_64'),
    el('serial', { type: 'file' }, el('source', { path: spec.serialLog, append: 'on' }), el('target', { port: 0 })),
  ];
  if (spec.commandSocket) {
    devices.push(
      el(
        'serial',
        { type: 'unix' },
        el('source', { mode: 'bind', path: spec.commandSocket }),
        el('target', { port: 1 }),
      ),
    );
  }
  (spec.disks ?? []).forEach((path, i) => {
    devices.push(
      el(
        'disk',
        { type: 'file', device: 'disk' },
        el('driver', { name: 'qemu', type: 'raw' }),
        el('source', { file: path }),
        el('target', { dev: `vd${String.fromCharCode(97 + i)}`, bus: 'virtio' }),
      ),
    );
  });
  devices.push(el('controller', { type: 'usb', model: 'none' }), el('memballoon', { model: 'none' }));
  return serialize(
    el(
      'domain',
      { type: 'qemu' },
      el('name', {}, spec.name),
      el('uuid', {}, spec.uuid),
      el('memory', { unit: 'MiB' }, spec.memoryMiB ?? 128),
      el('vcpu', {}, 1),
      el(
        'os',
        {},
        el('type', { arch: 'x86_64', machine: 'pc' }, 'hvm'),
        el('kernel', {}, spec.kernel),
        el('initrd', {}, spec.initrd),
        el('cmdline', {}, 'console=ttyS0 quiet panic=-1'),
      ),
      el('on_poweroff', {}, 'destroy'),
      el('on_reboot', {}, 'restart'),
      el('on_crash', {}, 'destroy'),
      el('devices', {}, ...devices),
    ),
  );
}
