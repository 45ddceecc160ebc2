// The domain XML builder: the structure of what it writes, read back with an XML parser, and
// what it does with hostile values (refuses them, naming the field, or escapes them).
import { describe, expect, it } from '@jest/globals';
import { domainName, MAX_DOMAIN_NAME } from '../../src/hypervisors/domain-name.js';
import { DomainSpecError } from '../../src/hypervisors/domain-values.js';
import { buildDomainXml, derivedMac, diskDeviceName, type DomainXmlInput } from '../../src/hypervisors/domain-xml.js';
import { child, childrenNamed, parseXml, type XmlElement } from '../../src/hypervisors/xml.js';
import { disk, kvmInput, MATRIX, nic, UID, xenInput } from './domain-xml-matrix.js';

function build(input: DomainXmlInput): XmlElement {
  return parseXml(buildDomainXml(input).xml);
}

function must(node: XmlElement | undefined, what: string): XmlElement {
  if (!node) throw new Error(`missing <${what}>`);
  return node;
}

function countElements(node: XmlElement): number {
  return 1 + node.children.reduce((sum, c) => sum + countElements(c), 0);
}

function refused(action: () => unknown): DomainSpecError {
  try {
    action();
  } catch (error) {
    if (error instanceof DomainSpecError) return error;
    throw error;
  }
  throw new Error('the value was accepted');
}

function refusal(input: DomainXmlInput): DomainSpecError {
  return refused(() => buildDomainXml(input));
}

/** Checks the XML against what the input asks for; the matrix runs every case through it. */
function expectDomainFor(input: DomainXmlInput, domain: XmlElement): void {
  const { spec, target } = input;
  const xen = target.hypervisor === 'xen';
  const pv = xen && spec.xen?.mode === 'pv';
  expect(domain.name).toBe('domain');
  expect(domain.attrs.type).toBe(xen ? 'xen' : target.hypervisor === 'kvm' && target.kvmUsable ? 'kvm' : 'qemu');
  expect(child(domain, 'uuid')?.text).toBe(input.uid);
  expect(child(domain, 'name')?.text).toBe(domainName(input.namespace, input.name, input.uid));
  expect(child(domain, 'on_crash')?.text).toBe('destroy');

  const vcpus = spec.cpu.sockets * spec.cpu.cores * spec.cpu.threads;
  expect(child(domain, 'vcpu')?.text).toBe(String(vcpus));
  if (!pv) {
    expect(child(domain, 'cpu', 'topology')?.attrs).toMatchObject({
      sockets: String(spec.cpu.sockets),
      cores: String(spec.cpu.cores),
      threads: String(spec.cpu.threads),
    });
  }

  const os = must(child(domain, 'os'), 'os');
  expect(child(os, 'type')?.text).toBe(pv ? 'xen' : 'hvm');
  expect(os.attrs.firmware).toBe(spec.firmware.type === 'uefi' ? 'efi' : undefined);
  if (spec.firmware.type === 'uefi') {
    const features = childrenNamed(must(child(os, 'firmware'), 'firmware'), 'feature').map(
      (f) => `${f.attrs.name}=${f.attrs.enabled}`,
    );
    expect(features).toContain(`secure-boot=${spec.firmware.secureBoot ? 'yes' : 'no'}`);
  }
  if (spec.kernelBoot) {
    expect(child(os, 'kernel')?.text).toBe(spec.kernelBoot.kernel);
    expect(child(os, 'cmdline')?.text).toBe(spec.kernelBoot.cmdline);
  }

  const devices = must(child(domain, 'devices'), 'devices');
  const disks = childrenNamed(devices, 'disk');
  expect(disks).toHaveLength(spec.disks?.length ?? 0);
  (spec.disks ?? []).forEach((d, i) => {
    const element = disks[i]!;
    expect(child(element, 'source')?.attrs.file).toBe(input.disks?.[d.name]?.path);
    expect(child(element, 'driver')?.attrs.type).toBe(input.disks?.[d.name]?.format);
    expect(child(element, 'boot')?.attrs.order).toBe(d.bootOrder === undefined ? undefined : String(d.bootOrder));
    expect(child(element, 'readonly') !== undefined).toBe(d.readOnly);
  });
  const targets = disks.map((d) => child(d, 'target')?.attrs.dev);
  expect(new Set(targets).size).toBe(targets.length);

  const nics = childrenNamed(devices, 'interface');
  expect(nics).toHaveLength(spec.networks?.length ?? 0);
  (spec.networks ?? []).forEach((n, i) => {
    const element = nics[i]!;
    if (n.bridge) expect(element.attrs.type).toBe('bridge');
    else expect(child(element, 'source')?.attrs.network).toBe(n.network ?? input.defaultNetwork);
    expect(child(element, 'mac')?.attrs.address).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  const consoles = childrenNamed(devices, 'console');
  const serials = childrenNamed(devices, 'serial');
  expect(consoles.length + serials.length).toBeGreaterThan(0);
  const agent = childrenNamed(devices, 'channel').find(
    (c) => child(c, 'target')?.attrs.name === 'org.qemu.guest_agent.0',
  );
  expect(agent !== undefined).toBe(target.hypervisor === 'kvm' && input.guestAgent !== false);
}

describe('buildDomainXml: structure', () => {
  it.each(MATRIX)('%s: every part of the spec is in the XML', (_name, input) => {
    expectDomainFor(input, build(input));
  });

  it('uses the VM UID as domain UUID and records the VM in <metadata>', () => {
    const { uuid, name, xml } = buildDomainXml(kvmInput());
    expect(uuid).toBe(UID);
    expect(name).toBe('vf-default_web-1');
    const vm = must(child(parseXml(xml), 'metadata', 'vf:vm'), 'vf:vm');
    expect(vm.attrs).toMatchObject({ namespace: 'default', name: 'web-1', uid: UID });
    expect(child(parseXml(xml), 'title')?.text).toBe('default/web-1');
  });

  it('writes type qemu (TCG) where KVM is not usable, kvm where it is', () => {
    expect(build(kvmInput()).attrs.type).toBe('qemu');
    expect(build(kvmInput({ target: { hypervisor: 'kvm', kvmUsable: true } })).attrs.type).toBe('kvm');
  });

  it('gives memory in KiB, rounding decimal quantities up', () => {
    const memory = (quantity: string) => child(build(kvmInput({}, { memory: quantity })), 'memory');
    expect(memory('128Mi')).toMatchObject({ attrs: { unit: 'KiB' }, text: '131072' });
    expect(memory('1.5Gi')?.text).toBe('1572864');
    expect(memory('1G')?.text).toBe('976563');
    expect(memory('16Ti')?.text).toBe(String(16 * 1024 ** 3));
  });

  it('writes host-passthrough, host-model and custom CPU models', () => {
    const cpu = (model: string) =>
      must(child(build(kvmInput({}, { cpu: { sockets: 1, cores: 2, threads: 1, model } })), 'cpu'), 'cpu');
    expect(cpu('host-passthrough').attrs.mode).toBe('host-passthrough');
    expect(cpu('host-model').attrs.mode).toBe('host-model');
    const custom = cpu('Skylake-Server');
    expect(custom.attrs).toMatchObject({ mode: 'custom', match: 'exact' });
    expect(child(custom, 'model')).toMatchObject({ text: 'Skylake-Server', attrs: { fallback: 'forbid' } });
  });

  it('turns on SMM and enrolled keys for Secure Boot', () => {
    const domain = build(kvmInput({}, { firmware: { type: 'uefi', secureBoot: true } }));
    expect(child(domain, 'features', 'smm')?.attrs.state).toBe('on');
    expect(childrenNamed(must(child(domain, 'os', 'firmware'), 'firmware'), 'feature').map((f) => f.attrs)).toEqual([
      { enabled: 'yes', name: 'enrolled-keys' },
      { enabled: 'yes', name: 'secure-boot' },
    ]);
    expect(child(build(kvmInput()), 'features', 'smm')).toBeUndefined();
  });

  it('names disks per bus (vda, sda, …), boots the first disk unless an order is given', () => {
    const domain = build(
      kvmInput(
        {},
        {
          disks: [
            disk('root'),
            disk('data', { bus: 'sata' }),
            disk('seed', { bus: 'scsi', readOnly: true }),
            disk('scratch'),
          ],
        },
      ),
    );
    const devices = must(child(domain, 'devices'), 'devices');
    expect(
      childrenNamed(devices, 'disk').map((d) => `${child(d, 'target')?.attrs.dev}/${child(d, 'target')?.attrs.bus}`),
    ).toEqual(['vda/virtio', 'sda/sata', 'sdb/scsi', 'vdb/virtio']);
    expect(childrenNamed(devices, 'controller').map((c) => c.attrs.model)).toEqual(['virtio-scsi']);
    expect(child(domain, 'os', 'boot')?.attrs.dev).toBe('hd');
    const ordered = build(kvmInput({}, { disks: [disk('root'), disk('data', { bootOrder: 1 })] }));
    expect(child(ordered, 'os', 'boot')).toBeUndefined();
    expect(diskDeviceName('vd', 25)).toBe('vdz');
    expect(diskDeviceName('vd', 26)).toBe('vdaa');
  });

  it('joins the default network, a named network or a bridge, with a MAC that stays put across builds', () => {
    const input = kvmInput(
      {},
      { networks: [nic('eth0'), nic('eth1', { network: 'pxe' }), nic('eth2', { bridge: 'br0', model: 'e1000' })] },
    );
    const nics = childrenNamed(must(child(build(input), 'devices'), 'devices'), 'interface');
    expect(nics.map((n) => [n.attrs.type, child(n, 'source')?.attrs, child(n, 'model')?.attrs.type])).toEqual([
      ['network', { network: 'default' }, 'virtio'],
      ['network', { network: 'pxe' }, 'virtio'],
      ['bridge', { bridge: 'br0' }, 'e1000'],
    ]);
    expect(child(nics[0]!, 'mac')?.attrs.address).toBe(derivedMac('kvm', UID, 'eth0'));
    expect(derivedMac('kvm', UID, 'eth0')).toMatch(/^52:54:00:/);
    expect(derivedMac('xen', UID, 'eth0')).toMatch(/^00:16:3e:/);
    expect(derivedMac('kvm', UID, 'eth0')).not.toBe(derivedMac('kvm', UID, 'eth1'));
    expect(buildDomainXml(input).xml).toBe(buildDomainXml(input).xml);
  });

  it('has a pty serial console, and with a log path also copies it to a file', () => {
    const devices = must(child(build(kvmInput({ serialLogPath: '/var/log/vf/web.log' })), 'devices'), 'devices');
    const serial = must(child(devices, 'serial'), 'serial');
    expect(serial.attrs.type).toBe('pty');
    expect(child(serial, 'log')?.attrs).toEqual({ file: '/var/log/vf/web.log', append: 'on' });
    expect(child(devices, 'console', 'target')?.attrs).toEqual({ type: 'serial', port: '0' });
  });

  it('boots a kernel directly, with initrd and command line', () => {
    const os = must(
      child(
        build(
          kvmInput(
            {},
            { kernelBoot: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd', cmdline: 'console=ttyS0' }, disks: [] },
          ),
        ),
        'os',
      ),
      'os',
    );
    expect([child(os, 'kernel')?.text, child(os, 'initrd')?.text, child(os, 'cmdline')?.text]).toEqual([
      '/boot/vmlinuz',
      '/boot/initrd',
      'console=ttyS0',
    ]);
    expect(child(os, 'boot')).toBeUndefined();
  });

  it('writes Xen HVM with paravirtual disks and NICs, and a file-backed serial port for logs', () => {
    const domain = build(xenInput('hvm', { serialLogPath: '/var/log/vf/x.log' }));
    expect(domain.attrs.type).toBe('xen');
    expect(child(domain, 'os', 'type')).toMatchObject({ text: 'hvm', attrs: { machine: 'xenfv' } });
    const devices = must(child(domain, 'devices'), 'devices');
    expect(child(devices, 'disk', 'target')?.attrs).toEqual({ dev: 'xvda', bus: 'xen' });
    expect(child(devices, 'interface', 'model')).toBeUndefined();
    expect(child(devices, 'interface', 'mac')?.attrs.address).toMatch(/^00:16:3e:/);
    expect(child(devices, 'serial')).toMatchObject({ attrs: { type: 'file' } });
    expect(child(devices, 'serial', 'source')?.attrs.path).toBe('/var/log/vf/x.log');
    expect(child(devices, 'channel')).toBeUndefined();
  });

  it('writes Xen PV without firmware, features or CPU model, with a Xen console', () => {
    const domain = build(xenInput('pv', {}, { kernelBoot: { kernel: '/boot/vmlinuz-xen' } }));
    expect(child(domain, 'os', 'type')).toMatchObject({ text: 'xen', attrs: { machine: 'xenpv' } });
    expect(child(domain, 'os', 'kernel')?.text).toBe('/boot/vmlinuz-xen');
    expect(child(domain, 'features')).toBeUndefined();
    expect(child(domain, 'cpu')).toBeUndefined();
    expect(child(domain, 'devices', 'console', 'target')?.attrs).toEqual({ type: 'xen', port: '0' });
    expect(child(domain, 'devices', 'serial')).toBeUndefined();
    const booted = build(xenInput('pv', { target: { hypervisor: 'xen', bootloader: '/usr/lib/xen/bin/pygrub' } }));
    expect(child(booted, 'bootloader')?.text).toBe('/usr/lib/xen/bin/pygrub');
  });
});

describe('domainName', () => {
  it('is vf-<namespace>_<name> when short', () => {
    expect(domainName('default', 'web-1', UID)).toBe('vf-default_web-1');
  });

  it('does not confuse namespace and name boundaries', () => {
    expect(domainName('a-b', 'c', UID)).not.toBe(domainName('a', 'b-c', UID));
  });

  it(`truncates long names to ${MAX_DOMAIN_NAME} characters and ends them in a hash of the UID`, () => {
    const long = domainName('team-a', 'x'.repeat(253), UID);
    expect(long).toHaveLength(MAX_DOMAIN_NAME);
    expect(long).toMatch(/^vf-team-a_x+-[0-9a-f]{10}$/);
    const other = domainName('team-a', 'x'.repeat(253), '1b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f');
    expect(other).not.toBe(long);
    expect(domainName('team-a', 'x'.repeat(253), UID)).toBe(long);
    expect(domainName('n'.repeat(63), 'x'.repeat(253), UID)).toHaveLength(MAX_DOMAIN_NAME);
  });

  it('uses only [A-Za-z0-9_.-]', () => {
    expect(domainName('kube-system', 'db.example-1', UID)).toMatch(/^[A-Za-z0-9_.-]+$/);
  });

  it.each([
    ['metadata.namespace', "x'><devices>", 'web'],
    ['metadata.namespace', 'Default', 'web'],
    ['metadata.name', 'default', 'web_1'],
    ['metadata.name', 'default', '../etc'],
    ['metadata.name', 'default', 'a'.repeat(254)],
  ])('refuses an invalid %s', (field, namespace, name) => {
    expect(refused(() => domainName(namespace, name, UID)).field).toBe(field);
  });
});

// Strings meant to break out of their element or attribute, or to be misread by libvirt.
const HOSTILE = [
  `x'><devices><disk/></devices><name>`,
  `x"><devices/>`,
  `<![CDATA[x]]>`,
  '&lt;&amp;',
  '../../etc/shadow',
  '/var/lib/../../etc/shadow',
  '/var/lib/./x',
  'relative/path',
  '/with space',
  '/with\nnewline',
  '/with\u0000nul',
  'line\r\nbreak',
  'tab\there',
  'lone\ud800surrogate',
  'line\u2028separator',
  `/${'a'.repeat(5000)}`,
  'x'.repeat(70000),
  '',
];

type Field = [field: string, apply: (value: string) => DomainXmlInput];

const FIELDS: Field[] = [
  ['metadata.uid', (v) => kvmInput({ uid: v })],
  ['metadata.namespace', (v) => kvmInput({ namespace: v })],
  ['metadata.name', (v) => kvmInput({ name: v })],
  ['spec.memory', (v) => kvmInput({}, { memory: v })],
  ['spec.cpu.model', (v) => kvmInput({}, { cpu: { sockets: 1, cores: 1, threads: 1, model: v } })],
  ['spec.kernelBoot.kernel', (v) => kvmInput({}, { kernelBoot: { kernel: v } })],
  ['spec.kernelBoot.initrd', (v) => kvmInput({}, { kernelBoot: { kernel: '/boot/vmlinuz', initrd: v } })],
  ['spec.disks[0].name', (v) => kvmInput({}, { disks: [disk(v)] })],
  ['disks.root.path', (v) => kvmInput({ disks: { root: { path: v, format: 'qcow2' } } })],
  ['spec.networks[0].name', (v) => kvmInput({}, { networks: [nic(v)] })],
  ['spec.networks[0].network', (v) => kvmInput({}, { networks: [nic('eth0', { network: v })] })],
  ['spec.networks[0].bridge', (v) => kvmInput({}, { networks: [nic('eth0', { bridge: v })] })],
  ['spec.networks[0].macAddress', (v) => kvmInput({}, { networks: [nic('eth0', { macAddress: v })] })],
  ['defaultNetwork', (v) => kvmInput({ defaultNetwork: v })],
  ['serialLogPath', (v) => kvmInput({ serialLogPath: v })],
  ['target.emulator', (v) => kvmInput({ target: { hypervisor: 'kvm', kvmUsable: false, emulator: v } })],
  ['target.bootloader', (v) => xenInput('pv', { target: { hypervisor: 'xen', bootloader: v } })],
];

describe('buildDomainXml: hostile values', () => {
  const cases = FIELDS.flatMap(([field, apply]) =>
    HOSTILE.map((value) => [field, JSON.stringify(value).slice(0, 60), apply, value] as const),
  );

  it.each(cases)('refuses %s = %s, naming the field', (field, _shown, apply, value) => {
    const error = refusal(apply(value));
    expect(error.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
  });

  it('escapes a kernel command line with quotes, angle brackets and entities: it stays text, no element is added', () => {
    const baseline = countElements(build(kvmInput({}, { kernelBoot: { kernel: '/boot/vmlinuz', cmdline: 'quiet' } })));
    // Entity-like text stays literal: '&amp;' comes back as '&amp;', '&#10;' never becomes a newline.
    const cmdlines = [
      `x'><devices><disk/></devices><name>`,
      `a="b" c='d' <e> &f; &amp;`,
      'quiet&#10;init=/bin/sh',
      ']]>',
      '<!-- x -->',
      '<'.repeat(4096),
    ];
    for (const cmdline of cmdlines) {
      const { xml } = buildDomainXml(kvmInput({}, { kernelBoot: { kernel: '/boot/vmlinuz', cmdline } }));
      const domain = parseXml(xml);
      expect(child(domain, 'os', 'cmdline')?.text).toBe(cmdline);
      expect(countElements(domain)).toBe(baseline);
      expect(childrenNamed(domain, 'devices')).toHaveLength(1);
      expect(xml).not.toContain('<devices><disk/>');
    }
  });

  it.each([
    ['a newline', 'console=ttyS0\ninit=/bin/sh'],
    ['a NUL', 'quiet\u0000'],
    ['a carriage return', 'quiet\r'],
    ['an escape character', 'quiet\u001b[2J'],
    ['a lone surrogate', 'quiet\udc00'],
    ['more than 4096 characters', 'a'.repeat(4097)],
  ])('refuses a kernel command line with %s', (_what, cmdline) => {
    expect(refusal(kvmInput({}, { kernelBoot: { kernel: '/boot/vmlinuz', cmdline } })).field).toBe(
      'spec.kernelBoot.cmdline',
    );
  });

  it.each([
    ['memory below 16Mi', 'spec.memory', kvmInput({}, { memory: '15Mi' })],
    ['memory above 16Ti', 'spec.memory', kvmInput({}, { memory: '17Ti' })],
    ['memory 1e99', 'spec.memory', kvmInput({}, { memory: '1e99' })],
    ['more than 512 vCPUs', 'spec.cpu', kvmInput({}, { cpu: { sockets: 16, cores: 16, threads: 4 } })],
    ['a fractional core count', 'spec.cpu.cores', kvmInput({}, { cpu: { sockets: 1, cores: 1.5, threads: 1 } })],
    ['a boot order of 0', 'spec.disks[0].bootOrder', kvmInput({}, { disks: [disk('root', { bootOrder: 0 })] })],
    ['a disk without an image', 'disks.extra', kvmInput({}, { disks: [disk('extra')] })],
    ['two disks of one name', 'spec.disks[1].name', kvmInput({}, { disks: [disk('root'), disk('root')] })],
    ['two NICs of one name', 'spec.networks[1].name', kvmInput({}, { networks: [nic('eth0'), nic('eth0')] })],
    [
      'a NIC with network and bridge',
      'spec.networks[0].bridge',
      kvmInput({}, { networks: [nic('eth0', { network: 'a', bridge: 'br0' })] }),
    ],
    ['a NIC with nowhere to go', 'spec.networks[0].network', kvmInput({ defaultNetwork: undefined })],
    [
      'a multicast MAC',
      'spec.networks[0].macAddress',
      kvmInput({}, { networks: [nic('eth0', { macAddress: '01:00:5e:00:00:01' })] }),
    ],
    ['an upper-case UID', 'metadata.uid', kvmInput({ uid: UID.toUpperCase() })],
    ['spec.xen on KVM', 'spec.xen', kvmInput({}, { xen: { mode: 'hvm' } })],
    [
      'Secure Boot on Xen',
      'spec.firmware.secureBoot',
      xenInput('hvm', {}, { firmware: { type: 'uefi', secureBoot: true } }),
    ],
    [
      'UEFI on Xen PV',
      'spec.firmware.type',
      xenInput('pv', {}, { firmware: { type: 'uefi', secureBoot: false }, kernelBoot: { kernel: '/boot/k' } }),
    ],
    ['Xen PV with nothing to boot', 'spec.kernelBoot', xenInput('pv')],
    [
      'a SATA disk on Xen PV',
      'spec.disks[0].bus',
      xenInput('pv', {}, { kernelBoot: { kernel: '/boot/k' }, disks: [disk('root', { bus: 'sata' })] }),
    ],
    [
      'an emulated NIC on Xen PV',
      'spec.networks[0].model',
      xenInput('pv', {}, { kernelBoot: { kernel: '/boot/k' }, networks: [nic('eth0', { model: 'e1000' })] }),
    ],
    [
      'a serial log on Xen PV',
      'serialLogPath',
      xenInput('pv', { serialLogPath: '/var/log/x' }, { kernelBoot: { kernel: '/boot/k' } }),
    ],
    [
      'a CPU model on Xen',
      'spec.cpu.model',
      xenInput('hvm', {}, { cpu: { sockets: 1, cores: 1, threads: 1, model: 'Skylake-Server' } }),
    ],
  ])('refuses %s', (_what, field, input) => {
    expect(refusal(input).field).toBe(field);
  });
});

describe('the VM lease (HostPool spec.leases)', () => {
  it('names the lockspace as libvirt and virtlockd join it: target path + lockspace name = the lockspace directory', () => {
    const lease = must(
      child(
        must(
          child(
            build(kvmInput({ lease: { lockspaceDir: '/var/lib/libvirt/lockd/files/', key: `virtfleet-${UID}` } })),
            'devices',
          ),
          'devices',
        ),
        'lease',
      ),
      'lease',
    );
    expect(child(lease, 'lockspace')?.text).toBe('files');
    expect(child(lease, 'key')?.text).toBe(`virtfleet-${UID}`);
    expect(child(lease, 'target')?.attrs).toEqual({ path: '/var/lib/libvirt/lockd' });
  });

  it('has none without spec.leases', () => {
    expect(child(must(child(build(kvmInput()), 'devices'), 'devices'), 'lease')).toBeUndefined();
  });

  it.each(['/', 'relative/dir', '/a/../b', "/a/b'c"])('refuses the lockspace %j, naming the field', (dir) => {
    expect(refusal(kvmInput({ lease: { lockspaceDir: dir, key: 'k' } })).message).toMatch(/spec\.leases\.lockspace/);
  });
});
