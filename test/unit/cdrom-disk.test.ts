// A disk of type cdrom (an ISO VirtualMachineImage) in the domain: a read-only raw CD-ROM on SATA
// (IDE on Xen HVM, SCSI when asked), its bootOrder honoured beside the disks' (no <os><boot>),
// valid for libvirt's schema; refused for Xen PV naming the field; the API's rules on the field;
// and a CD-ROM that is not the cloud-init seed counted as spec.disks by RestartRequired.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { validateObject } from '../../src/api/validate.js';
import { fieldsAwaitingRestart } from '../../src/controllers/restart-required.js';
import { buildDomainXml } from '../../src/hypervisors/domain-xml.js';
import { child, childrenNamed, parseXml } from '../../src/hypervisors/xml.js';

const UID = '8f0f7a6e-2b7c-4d65-9a53-0c6f1f3a9d21';
const ISO = { path: '/var/lib/libvirt/images/vfi-lab_installer', format: 'raw' as const };
const ROOT = { path: '/var/lib/libvirt/images/root.qcow2', format: 'qcow2' as const };

const spec = (disks: object[], extra: object = {}) =>
  ({
    cpu: { cores: 1, sockets: 1, threads: 1 },
    memory: '512Mi',
    firmware: { type: 'bios', secureBoot: false },
    disks,
    ...extra,
  }) as never;

const installer = [
  { name: 'root', bus: 'virtio', bootOrder: 2, source: { blank: {} } },
  { name: 'install', type: 'cdrom', bus: 'virtio', bootOrder: 1, source: { image: { name: 'installer' } } },
];

function build(disks: object[], target: object = { hypervisor: 'kvm', kvmUsable: false }, extra: object = {}) {
  return buildDomainXml({
    uid: UID,
    namespace: 'lab',
    name: 'install-1',
    spec: spec(disks, extra),
    target: target as never,
    disks: { root: ROOT, install: ISO },
  }).xml;
}

describe('a cdrom disk in the domain', () => {
  it('is a read-only raw CD-ROM on SATA with its boot order, and no <os><boot>, valid for libvirt', () => {
    const xml = build(installer);
    const domain = parseXml(xml);
    const disks = childrenNamed(child(domain, 'devices')!, 'disk');
    const cdrom = disks.find((d) => d.attrs.device === 'cdrom')!;
    expect(child(cdrom, 'source')?.attrs.file).toBe(ISO.path);
    expect(child(cdrom, 'driver')?.attrs.type).toBe('raw');
    expect(child(cdrom, 'target')?.attrs).toEqual({ dev: 'sda', bus: 'sata' });
    expect(child(cdrom, 'boot')?.attrs.order).toBe('1');
    expect(child(cdrom, 'readonly')).toBeDefined();
    const root = disks.find((d) => d.attrs.device === 'disk')!;
    expect(child(root, 'boot')?.attrs.order).toBe('2');
    // Per-device boot order and <os><boot dev> exclude each other in libvirt.
    expect(childrenNamed(child(domain, 'os')!, 'boot')).toHaveLength(0);
    const dir = mkdtempSync(join(tmpdir(), 'vf-cdrom-xml-'));
    try {
      writeFileSync(join(dir, 'd.xml'), xml);
      execFileSync('virt-xml-validate', [join(dir, 'd.xml'), 'domain'], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shares the sd names with SATA disks, takes SCSI when asked, and is on IDE for Xen HVM', () => {
    const withSata = build([
      { name: 'root', bus: 'sata', source: { blank: {} } },
      { name: 'install', type: 'cdrom', bus: 'sata', source: { image: { name: 'installer' } } },
    ]);
    expect(withSata).toMatch(/device="cdrom"[^]*<target dev="sdb" bus="sata"\/>/);
    const scsi = build([{ name: 'install', type: 'cdrom', bus: 'scsi', source: { image: { name: 'installer' } } }]);
    expect(scsi).toMatch(/device="cdrom"[^]*<target dev="sda" bus="scsi"\/>/);
    expect(scsi).toContain('model="virtio-scsi"');
    const hvm = build(installer, { hypervisor: 'xen' }, { xen: { mode: 'hvm' } });
    expect(hvm).toMatch(/device="cdrom"[^]*<target dev="hda" bus="ide"\/>/);
  });

  it('is refused for Xen PV, naming the field', () => {
    expect(() =>
      build(installer, { hypervisor: 'xen' }, { xen: { mode: 'pv' }, kernelBoot: { kernel: '/boot/vmlinuz' } }),
    ).toThrow(/spec\.disks\[1\]\.type: Xen PV guests have no CD-ROM/);
  });

  it('counts as spec.disks for RestartRequired, unlike the cloud-init seed', () => {
    const before = build(installer);
    const after = build([installer[0]!]);
    expect(fieldsAwaitingRestart(before, after)).toEqual(['spec.disks']);
  });
});

describe('the API rules of type: cdrom', () => {
  const vm = (disk: object) => ({
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'install-1', namespace: 'lab' },
    spec: { hostPoolRef: { name: 'p' }, memory: '512Mi', disks: [disk] },
  });
  const problems = (disk: object) => validateObject(vm(disk)).map((p) => `${p.path}: ${p.message}`);

  it('takes an image by name', () => {
    expect(problems({ name: 'cd', type: 'cdrom', source: { image: { name: 'installer' } } })).toEqual([]);
  });

  it('refuses another source, a copy and a size, naming the field', () => {
    expect(problems({ name: 'cd', type: 'cdrom', source: { blank: {} } }).join('\n')).toMatch(
      /spec\.disks\[0\]\.source: a cdrom shows an ISO image: set source\.image\.name/,
    );
    expect(problems({ name: 'cd', type: 'cdrom', source: { image: { name: 'i', copy: true } } }).join('\n')).toMatch(
      /spec\.disks\[0\]\.source\.image\.copy: a cdrom uses the image's volume read-only/,
    );
    expect(problems({ name: 'cd', type: 'cdrom', size: '1Gi', source: { image: { name: 'i' } } }).join('\n')).toMatch(
      /spec\.disks\[0\]\.size: a cdrom has the size of its image/,
    );
  });
});
