// PXE boot files, pure (src/provisioning/pxe.ts, src/controllers/install/pxe.ts): the install
// network's definition (checked against libvirt's schema with virt-xml-validate), the boot file
// and the per-MAC iPXE script, the installer's domain (one NIC on the install network, network
// boot), and every hostile value refused rather than written.
import { installPxe } from '../../src/cli/controller.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { pxeInstallerSpec, pxeMacHolder, pxeMacInDomain } from '../../src/controllers/install/pxe.js';
import { buildDomainXml } from '../../src/hypervisors/domain-xml.js';
import { installerCmdline } from '../../src/provisioning/install-boot.js';
import {
  BOOT_SCRIPT,
  PXE_DEFAULTS,
  PxeValueError,
  bootScript,
  cmdlineInScript,
  macScript,
  macScriptName,
  networkXml,
  pxeSettings,
  scriptCmdline,
} from '../../src/provisioning/pxe.js';

const UID = '0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f';
const URL = `http://10.0.0.2:8082/ks/${UID}/${'A'.repeat(43)}`;

function validate(kind: 'network' | 'domain', xml: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'vf-pxe-xml-'));
  try {
    writeFileSync(join(dir, 'x.xml'), xml);
    execFileSync('virt-xml-validate', [join(dir, 'x.xml'), kind], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the install network', () => {
  it('is NAT with DHCP, the boot file and the PXE pool as TFTP root, and valid for libvirt', () => {
    const xml = networkXml(pxeSettings(), '/var/lib/libvirt/virtfleet-pxe');
    expect(xml).toContain('<name>vf-install</name>');
    expect(xml).toContain('<forward mode="nat"');
    expect(xml).toContain('<bridge name="vfinstall0" stp="off"');
    expect(xml).toContain('<ip address="192.168.213.1" netmask="255.255.255.0">');
    expect(xml).toContain('<tftp root="/var/lib/libvirt/virtfleet-pxe"');
    expect(xml).toContain('<range start="192.168.213.10" end="192.168.213.250"');
    expect(xml).toContain(`<bootp file="${BOOT_SCRIPT}"`);
    validate('network', xml);
  });

  it.each([
    ['a comma (a dnsmasq option separator)', '/var/lib/a,lo'],
    ['a newline (a dnsmasq option of its own)', '/var/lib/a\nenable-ra'],
    ['a space', '/var/lib/my pool'],
    ['a relative path', 'var/lib/pool'],
    ['a .. segment', '/var/lib/../etc'],
    ['a quote', '/var/lib/"x'],
  ])('refuses a TFTP root with %s', (_what, root) => {
    expect(() => networkXml(pxeSettings(), root)).toThrow(PxeValueError);
  });

  it.each([
    [{ network: 'vf install' }, 'network'],
    [{ network: "x'/><forward mode='open" }, 'network'],
    [{ bridge: 'a-bridge-name-too-long' }, 'bridge'],
    [{ address: '192.168.213.0' }, 'address'],
    [{ address: '192.168.213.300' }, 'address'],
    [{ pool: 'pool;rm' }, 'pool'],
    [{ poolPath: '/var/lib/x,y' }, 'poolPath'],
  ])('refuses settings %j (%s)', (settings, field) => {
    expect(() => pxeSettings(settings)).toThrow(new RegExp(`^${field}: `));
  });
});

describe('the iPXE scripts', () => {
  it("chains from the boot file to the script of the NIC's MAC, and never powers off when there is none", () => {
    const script = bootScript();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain('chain vf-pxe-${netX/mac:hexhyp}.ipxe || goto none');
    expect(script).toContain('exit 1');
    expect(script).not.toMatch(/poweroff|reboot/);
    expect(macScriptName('52:54:00:AB:cd:01'.toLowerCase())).toBe('vf-pxe-52-54-00-ab-cd-01.ipxe');
  });

  it('loads the installer with the command line of a direct kernel boot', () => {
    const cmdline = installerCmdline(
      {
        installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
        boot: { method: 'pxe', extraArgs: 'quiet ip=dhcp' },
      },
      URL,
    );
    const text = macScript({
      kernel: 'vf-installer-0123456789abcdef0123-vmlinuz',
      initrd: 'vf-installer-0123456789abcdef0123-initrd.img',
      cmdline,
    });
    expect(text).toBe(
      [
        '#!ipxe',
        `kernel vf-installer-0123456789abcdef0123-vmlinuz inst.ks=${URL} inst.repo=https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os inst.text console=ttyS0 quiet ip=dhcp`,
        'initrd vf-installer-0123456789abcdef0123-initrd.img',
        'boot',
        '',
      ].join('\n'),
    );
    // A restarted controller reads the same back from the host.
    expect(cmdlineInScript(text)).toEqual({
      kernel: 'vf-installer-0123456789abcdef0123-vmlinuz',
      initrd: 'vf-installer-0123456789abcdef0123-initrd.img',
      cmdline,
    });
  });

  it.each([
    ['an iPXE variable', 'inst.ks=http://x/${net0/ip}'],
    ['a second command after ||', 'quiet || shell'],
    ['&&', 'quiet && shell'],
    ['a line break', 'quiet\nshell'],
    ['a carriage return', 'quiet\rshell'],
    ['a quote', 'x="a b"'],
    ['a single quote', "x='a'"],
    ['a backslash', 'x=a\\'],
    ['a comment', 'quiet #x'],
    ['a semicolon', 'a;b'],
    ['a tab', 'a\tb'],
    ['two spaces', 'a  b'],
    ['a trailing space', 'quiet '],
    ['a NUL', 'a\u0000b'],
    ['a Unicode line separator', 'a\u2028b'],
  ])('refuses a command line with %s', (_what, cmdline) => {
    expect(() => scriptCmdline(cmdline)).toThrow(PxeValueError);
    expect(() => macScript({ kernel: 'k', initrd: 'i', cmdline })).toThrow(PxeValueError);
  });

  it.each([
    ['a path', '../k'],
    ['a space', 'k x'],
    ['a newline', 'k\nshell'],
    ['a variable', 'k${x}'],
  ])('refuses a kernel or initrd name with %s', (_what, name) => {
    expect(() => macScript({ kernel: name, initrd: 'i', cmdline: '' })).toThrow(/^kernel: /);
    expect(() => macScript({ kernel: 'k', initrd: name, cmdline: '' })).toThrow(/^initrd: /);
  });

  it('refuses a MAC that is not one', () => {
    for (const mac of ['52:54:00:12:34', '52-54-00-12-34-56', '52:54:00:12:34:56\n', '../../etc'])
      expect(() => macScriptName(mac)).toThrow(/^mac: /);
  });
});

describe("the installer's domain for PXE", () => {
  const vm = {
    metadata: { uid: UID },
    spec: {
      networks: [
        { name: 'lan', network: 'default', model: 'virtio' as const },
        { name: 'storage', bridge: 'br1', model: 'virtio' as const },
      ],
      disks: [
        { name: 'root', size: '20Gi', bus: 'virtio' as const, bootOrder: 1, readOnly: false, source: { blank: {} } },
      ],
    },
  };

  it("has one NIC, the first one's MAC, on the install network, and boots from the network", () => {
    const installer = pxeInstallerSpec(vm as never, 'kvm', PXE_DEFAULTS.network);
    expect(installer.spec.networks).toEqual([
      { name: 'lan', network: 'vf-install', model: 'virtio', macAddress: installer.mac },
    ]);
    expect(installer.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    const { xml } = buildDomainXml({
      uid: UID,
      namespace: 'lab',
      name: 'web-1',
      spec: {
        cpu: { cores: 1, sockets: 1, threads: 1 },
        memory: '512Mi',
        firmware: { type: 'bios', secureBoot: false },
        ...installer.spec,
      } as never,
      target: { hypervisor: 'kvm', kvmUsable: false },
      disks: { root: { path: '/var/lib/libvirt/images/web-1-root.qcow2', format: 'qcow2' } },
      bootDevice: 'network',
    });
    expect(xml).toContain('<boot dev="network"/>');
    expect(xml).not.toContain('<boot dev="hd"/>');
    expect(xml).not.toContain('<boot order=');
    expect(xml).toContain('<source network="vf-install"/>');
    expect(xml).not.toContain('br1');
    validate('domain', xml);
    expect(pxeMacInDomain(xml, 'vf-install')).toBe(installer.mac);
    expect(pxeMacInDomain(xml, 'other')).toBeUndefined();
  });

  it('keeps a MAC the spec gives, and adds an install NIC to a VM without one', () => {
    const withMac = pxeInstallerSpec(
      {
        metadata: { uid: UID },
        spec: { networks: [{ name: 'lan', model: 'e1000', macAddress: '52:54:00:AA:BB:CC' }] },
      } as never,
      'kvm',
      'vf-install',
    );
    expect(withMac.mac).toBe('52:54:00:aa:bb:cc');
    const none = pxeInstallerSpec({ metadata: { uid: UID }, spec: {} } as never, 'kvm', 'vf-install');
    expect(none.spec.networks).toEqual([
      { name: 'install', network: 'vf-install', model: 'virtio', macAddress: none.mac },
    ]);
  });
});

describe('the controller flags for PXE (virtfleet controller --pxe-*)', () => {
  const defaults = {
    pxeNetwork: 'vf-install',
    pxeBridge: 'vfinstall0',
    pxeAddress: '192.168.213.1',
    pxePool: 'vf-pxe',
    pxePoolPath: '/var/lib/libvirt/virtfleet-pxe',
  };

  it('pass checked settings to the controllers', () => {
    expect(installPxe({ ...defaults, pxeAddress: '10.77.0.1', pxeNetwork: 'lab-install' })).toEqual({
      installPxe: {
        network: 'lab-install',
        bridge: 'vfinstall0',
        address: '10.77.0.1',
        pool: 'vf-pxe',
        poolPath: '/var/lib/libvirt/virtfleet-pxe',
      },
    });
  });

  it.each([
    [{ pxeAddress: '10.77.0.255' }, /^--pxe-address: /],
    [{ pxeAddress: '10.77.0.1,evil' }, /^--pxe-address: /],
    [{ pxeBridge: 'a-bridge-name-too-long' }, /^--pxe-bridge: /],
    [{ pxeNetwork: 'vf install' }, /^--pxe-network: /],
    [{ pxePoolPath: '/var/lib/x,tftp-secure' }, /^--pxe-pool-path: /],
    [{ pxePool: "vf'pxe" }, /^--pxe-pool: /],
  ])('refuse %j, naming the flag', (change, message) => {
    expect(() => installPxe({ ...defaults, ...change })).toThrow(message);
  });
});

describe('a MAC already installing on the host (pxeMacHolder)', () => {
  const installing = { type: 'Installed', status: 'False', reason: 'Installing' };
  const vm = (uid: string, name: string, mac: string | undefined, status: Record<string, unknown>) => ({
    metadata: { uid, namespace: 'lab', name },
    spec: {
      install: {},
      disks: [],
      networks: mac ? [{ name: 'nic0', model: 'virtio' as const, macAddress: mac }] : [],
    },
    status: { hypervisor: 'kvm', ...status },
  });
  const first = vm('u1', 'first', '52:54:00:aa:bb:cc', { host: 'kvm-01', conditions: [installing] });

  it('is the other VM installing on that host with that MAC (any case)', () => {
    expect(pxeMacHolder([first], 'u2', 'kvm-01', '52:54:00:AA:BB:CC', 'vf-install')).toBe(first);
  });

  it('is none for the VM itself, another host, another MAC, an ended or waiting install, or a VM without spec.install', () => {
    expect(pxeMacHolder([first], 'u1', 'kvm-01', '52:54:00:aa:bb:cc', 'vf-install')).toBeUndefined();
    expect(pxeMacHolder([first], 'u2', 'kvm-02', '52:54:00:aa:bb:cc', 'vf-install')).toBeUndefined();
    expect(pxeMacHolder([first], 'u2', 'kvm-01', '52:54:00:aa:bb:cd', 'vf-install')).toBeUndefined();
    const done = vm('u1', 'first', '52:54:00:aa:bb:cc', {
      host: 'kvm-01',
      conditions: [{ type: 'Installed', status: 'True', reason: 'Installed' }],
    });
    const waiting = vm('u1', 'first', '52:54:00:aa:bb:cc', {
      host: 'kvm-01',
      conditions: [{ type: 'Installed', status: 'False', reason: 'PreparingInstall' }],
    });
    const plain = { ...first, spec: { ...first.spec, install: undefined } };
    for (const other of [done, waiting, plain])
      expect(pxeMacHolder([other], 'u2', 'kvm-01', '52:54:00:aa:bb:cc', 'vf-install')).toBeUndefined();
  });

  it('knows the MAC a VM without interfaces installs with (derived from its UID)', () => {
    const bare = vm('0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f', 'bare', undefined, {
      host: 'kvm-01',
      conditions: [installing],
    });
    const mac = pxeInstallerSpec(bare, 'kvm', 'vf-install').mac;
    expect(pxeMacHolder([bare], 'u2', 'kvm-01', mac, 'vf-install')).toBe(bare);
  });
});
