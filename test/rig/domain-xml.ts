// Domain XML for the rig's tiny guest, written through a small escaping
// serializer (no XML is built by pasting strings together). A stand-in until
// the project's domain XML builder (src/hypervisors/libvirt) is ready.
type Child = XmlElement | string | number;
interface XmlElement {
  name: string;
  attrs: Record<string, string | number>;
  children: Child[];
}

export function el(name: string, attrs: Record<string, string | number> = {}, ...children: Child[]): XmlElement {
  return { name, attrs, children };
}

function escape(value: string | number): string {
  const text = String(value);
  // NUL and other control characters cannot appear in XML 1.0 at all.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) {
    throw new Error(`control character in XML value ${JSON.stringify(text)}`);
  }
  return text.replace(/[&<>"'\r\n\t]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function serialize(node: Child): string {
  if (typeof node !== 'object') return escape(node);
  const attrs = Object.entries(node.attrs)
    .map(([k, v]) => ` ${k}="${escape(v)}"`)
    .join('');
  return `<${node.name}${attrs}>${node.children.map(serialize).join('')}</${node.name}>`;
}

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
      el('serial', { type: 'unix' }, el('source', { mode: 'bind', path: spec.commandSocket }), el('target', { port: 1 })),
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
