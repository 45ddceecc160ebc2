// The cloud-init NoCloud seed, pure (src/provisioning/cloud-init.ts, iso9660.ts): the image read
// back by our reader and by blkid (util-linux, an independent reader), meta-data YAML that means
// what it says for hostile names, size limits, and YAML errors that never quote the value.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import {
  CloudInitError,
  MAX_USER_DATA_BYTES,
  metaData,
  renderSeed,
  type SeedInput,
} from '../../src/provisioning/cloud-init.js';
import { fieldsAwaitingRestart } from '../../src/controllers/restart-required.js';
import { buildDomainXml } from '../../src/hypervisors/domain-xml.js';
import { child, childrenNamed, parseXml } from '../../src/hypervisors/xml.js';
import { buildIso9660, MIN_SECTORS, primaryName, SECTOR } from '../../src/provisioning/iso9660.js';
import { readIso9660 } from '../harness/iso9660.js';

const UID = '0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f';
const DATE = new Date('2026-03-04T05:06:07Z');

function input(overrides: Partial<SeedInput> = {}): SeedInput {
  return {
    instanceId: UID,
    hostname: 'web-1',
    userData: '#cloud-config\nusers:\n  - name: ops\n',
    userDataField: 'spec.cloudInit.userData',
    date: DATE,
    ...overrides,
  };
}

function blkid(image: Buffer): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'vf-seed-'));
  try {
    const file = join(dir, 'seed.iso');
    writeFileSync(file, image);
    const out = execFileSync('blkid', ['-p', '-o', 'export', file], { encoding: 'utf8' });
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('NoCloud seed image', () => {
  it('holds user-data, meta-data and network-config under Joliet names, label cidata', () => {
    const networkConfig = 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n';
    const seed = renderSeed(input({ networkConfig }));
    const listing = readIso9660(seed.iso);
    expect(listing.volumeId).toBe('cidata');
    expect(listing.jolietVolumeId).toBe('cidata');
    expect(listing.declaredBytes).toBe(seed.iso.length);
    expect([...listing.joliet.keys()]).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(listing.joliet.get('user-data')!.toString()).toBe(input().userData);
    expect(listing.joliet.get('network-config')!.toString()).toBe(networkConfig);
    expect(parse(listing.joliet.get('meta-data')!.toString())).toEqual({
      'instance-id': UID,
      'local-hostname': 'web-1',
    });
    // The primary name space holds the same bytes for readers without Joliet.
    expect(listing.primary.get('USER_DATA.;1')).toEqual(listing.joliet.get('user-data'));
    expect(listing.primary.get('NETWORK_CONFIG.;1')).toEqual(listing.joliet.get('network-config'));
  });

  it('is what blkid, an independent reader, takes for an ISO 9660 volume labelled cidata', () => {
    const tags = blkid(renderSeed(input()).iso);
    expect(tags.TYPE).toBe('iso9660');
    expect(tags.LABEL).toBe('cidata');
  });

  it('is at least 128 KiB, zeros after the files inside its volume (busybox probes no shorter device)', () => {
    const { iso } = renderSeed(input());
    expect(iso.length).toBe(MIN_SECTORS * SECTOR);
    // The primary volume descriptor's volume space size (both-endian, little-endian half first).
    expect(iso.readUInt32LE(16 * SECTOR + 80)).toBe(MIN_SECTORS);
    expect(blkid(iso).LABEL).toBe('cidata');
    // Two files near the limit: larger than the minimum, the volume is as large as they need.
    const near = 'x'.repeat(60_000);
    const big = renderSeed(input({ userData: `#!/bin/sh\n# ${near}\n`, networkConfig: `version: 2\n# ${near}\n` })).iso;
    expect(big.length).toBeGreaterThan(MIN_SECTORS * SECTOR);
    expect(big.readUInt32LE(16 * SECTOR + 80)).toBe(big.length / SECTOR);
  });

  it('has no network-config file unless one is given', () => {
    const listing = readIso9660(renderSeed(input()).iso);
    expect([...listing.joliet.keys()]).toEqual(['meta-data', 'user-data']);
  });

  it('gives the same bytes for the same input, and other bytes for other user data', () => {
    expect(renderSeed(input()).iso.equals(renderSeed(input()).iso)).toBe(true);
    expect(renderSeed(input()).iso.equals(renderSeed(input({ userData: '#cloud-config\n{}\n' })).iso)).toBe(false);
  });

  it('keeps files larger than a sector whole, each from its own sector', () => {
    const big = `#!/bin/sh\n# ${'x'.repeat(3 * SECTOR)}\n`;
    const seed = renderSeed(input({ userData: big }));
    expect(readIso9660(seed.iso).joliet.get('user-data')!.toString()).toBe(big);
    expect(seed.iso.length % SECTOR).toBe(0);
  });

  it('keeps an empty user data file (cloud-init applies its defaults)', () => {
    const listing = readIso9660(renderSeed(input({ userData: '' })).iso);
    expect(listing.joliet.get('user-data')!.length).toBe(0);
  });

  it('derives primary names in d-characters', () => {
    expect(primaryName('user-data')).toBe('USER_DATA.;1');
    expect(primaryName('a.b.iso')).toBe('A_B.ISO;1');
  });

  it('refuses names and labels the format cannot hold', () => {
    expect(() =>
      buildIso9660([{ name: 'User Data', content: Buffer.alloc(0) }], { volumeId: 'cidata', date: DATE }),
    ).toThrow(/file name/);
    expect(() => buildIso9660([], { volumeId: 'ci data', date: DATE })).toThrow(/volume id/);
    const same = { name: 'a', content: Buffer.alloc(0) };
    expect(() => buildIso9660([same, same], { volumeId: 'cidata', date: DATE })).toThrow(/twice/);
  });
});

describe('meta-data', () => {
  it.each(['true', '1e3', 'null', 'a: b', '- x', "'q'", '#c', 'no'])('keeps %j a string', (hostname) => {
    expect(parse(metaData(UID, hostname))).toEqual({ 'instance-id': UID, 'local-hostname': hostname });
  });
});

describe('limits and refusals', () => {
  it(`refuses user data over ${MAX_USER_DATA_BYTES} bytes, naming the field and the size`, () => {
    const userData = `#!/bin/sh\n${'é'.repeat(MAX_USER_DATA_BYTES / 2)}`; // 2 bytes each in UTF-8
    expect(() => renderSeed(input({ userData }))).toThrow(CloudInitError);
    expect(() => renderSeed(input({ userData }))).toThrow(
      new RegExp(
        `^spec\\.cloudInit\\.userData: is ${Buffer.byteLength(userData)} bytes; at most ${MAX_USER_DATA_BYTES}`,
      ),
    );
  });

  it('takes user data of exactly the limit', () => {
    const userData = `#!/bin/sh\n${'x'.repeat(MAX_USER_DATA_BYTES - 10)}`;
    expect(Buffer.byteLength(userData)).toBe(MAX_USER_DATA_BYTES);
    expect(
      readIso9660(renderSeed(input({ userData })).iso)
        .joliet.get('user-data')!
        .toString(),
    ).toBe(userData);
  });

  it('refuses #cloud-config that is not YAML by line and column, never quoting it', () => {
    const secret = 'hunter2-s3cr3t';
    const userData = `#cloud-config\npassword: ${secret}\n  bad: [\n`;
    let error: unknown;
    try {
      renderSeed(input({ userData, userDataField: 'Secret seed key user-data' }));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CloudInitError);
    const message = (error as Error).message;
    expect(message).toMatch(
      /^Secret seed key user-data: #cloud-config user data is not valid YAML \(\w+ at line \d+, column \d+\)$/,
    );
    expect(message).not.toContain(secret);
  });

  it('refuses #cloud-config that is a list, not a mapping', () => {
    expect(() => renderSeed(input({ userData: '#cloud-config\n- a\n' }))).toThrow(/must be a YAML mapping/);
  });

  it('passes scripts and other user data formats through untouched', () => {
    const userData = '#!/bin/sh\necho "a: [" > /tmp/x\n';
    expect(renderSeed(input({ userData })).files['user-data']).toBe(userData);
  });

  it('refuses network config without a version, and takes v1 under network:', () => {
    expect(() => renderSeed(input({ networkConfig: 'ethernets: {}\n' }))).toThrow(
      /^spec\.cloudInit\.networkConfig: network config needs version: 1 or version: 2/,
    );
    expect(() => renderSeed(input({ networkConfig: '- 1\n' }))).toThrow(/must be a YAML mapping/);
    expect(
      renderSeed(input({ networkConfig: 'network:\n  version: 1\n  config: []\n' })).files['network-config'],
    ).toBeDefined();
  });
});

describe('the seed in the domain', () => {
  const spec = (extra: object) =>
    ({
      cpu: { cores: 1, sockets: 1, threads: 1 },
      memory: '512Mi',
      firmware: { type: 'bios', secureBoot: false },
      disks: [
        { name: 'root', bus: 'virtio', source: { blank: {} } },
        { name: 'data', bus: 'sata', source: { blank: {} } },
      ],
      ...extra,
    }) as never;
  const disks = {
    root: { path: '/var/lib/libvirt/images/root.qcow2', format: 'qcow2' as const },
    data: { path: '/var/lib/libvirt/images/data.qcow2', format: 'qcow2' as const },
  };
  const path = '/var/lib/libvirt/images/lab_web-1_cloud-init.iso';
  const seed = (bus: 'virtio' | 'sata') => ({ path, format: 'raw' as const, bus });
  const seedOf = (xml: string) =>
    childrenNamed(child(parseXml(xml), 'devices')!, 'disk').filter((d) => child(d, 'source')?.attrs.file === path);

  function validate(xml: string): void {
    const dir = mkdtempSync(join(tmpdir(), 'vf-seed-xml-'));
    try {
      writeFileSync(join(dir, 'd.xml'), xml);
      execFileSync('virt-xml-validate', [join(dir, 'd.xml'), 'domain'], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('is by default a read-only raw virtio disk after the virtio disks (KVM), valid for libvirt', () => {
    const { xml } = buildDomainXml({
      uid: UID,
      namespace: 'lab',
      name: 'web-1',
      spec: spec({}),
      target: { hypervisor: 'kvm', kvmUsable: false },
      disks,
      seed: seed('virtio'),
    });
    const found = seedOf(xml);
    expect(found).toHaveLength(1);
    expect(found[0]!.attrs.device).toBe('disk');
    expect(child(found[0]!, 'driver')?.attrs.type).toBe('raw');
    expect(child(found[0]!, 'target')?.attrs).toEqual({ dev: 'vdb', bus: 'virtio' });
    expect(child(found[0]!, 'readonly')).toBeDefined();
    validate(xml);
  });

  it('with bus sata is a read-only raw CD-ROM after the SATA disks (KVM), valid for libvirt', () => {
    const { xml } = buildDomainXml({
      uid: UID,
      namespace: 'lab',
      name: 'web-1',
      spec: spec({}),
      target: { hypervisor: 'kvm', kvmUsable: false },
      disks,
      seed: seed('sata'),
    });
    const found = seedOf(xml);
    expect(found).toHaveLength(1);
    expect(found[0]!.attrs.device).toBe('cdrom');
    expect(child(found[0]!, 'driver')?.attrs.type).toBe('raw');
    expect(child(found[0]!, 'target')?.attrs).toEqual({ dev: 'sdb', bus: 'sata' });
    expect(child(found[0]!, 'readonly')).toBeDefined();
    validate(xml);
  });

  it('is a read-only xvd disk on Xen (HVM and PV), an IDE CD-ROM on Xen HVM with bus sata, refused on Xen PV with bus sata', () => {
    const xen = (extra: object, bus: 'virtio' | 'sata', pvDisks = false) =>
      buildDomainXml({
        uid: UID,
        namespace: 'lab',
        name: 'web-1',
        spec: spec(
          pvDisks
            ? {
                ...extra,
                kernelBoot: { kernel: '/boot/vmlinuz' },
                disks: [{ name: 'root', bus: 'virtio', source: { blank: {} } }],
              }
            : extra,
        ),
        target: { hypervisor: 'xen' },
        disks,
        seed: seed(bus),
      });
    expect(child(seedOf(xen({ xen: { mode: 'hvm' } }, 'virtio').xml)[0]!, 'target')?.attrs).toEqual({
      dev: 'xvdb',
      bus: 'xen',
    });
    const pv = seedOf(xen({ xen: { mode: 'pv' } }, 'virtio', true).xml)[0]!;
    expect(pv.attrs.device).toBe('disk');
    expect(child(pv, 'target')?.attrs).toEqual({ dev: 'xvdb', bus: 'xen' });
    expect(child(pv, 'readonly')).toBeDefined();
    expect(xen({ xen: { mode: 'hvm' } }, 'sata').xml).toMatch(/device="cdrom"[^]*<target dev="hdb" bus="ide"\/>/);
    expect(() => xen({ xen: { mode: 'pv' } }, 'sata', true)).toThrow(
      /^spec\.cloudInit\.bus: Xen PV guests have no CD-ROM/,
    );
  });
});

describe('RestartRequired for the seed', () => {
  const base = {
    uid: UID,
    namespace: 'lab',
    name: 'web-1',
    spec: {
      cpu: { cores: 1, sockets: 1, threads: 1 },
      memory: '512Mi',
      firmware: { type: 'bios', secureBoot: false },
      disks: [{ name: 'root', bus: 'virtio', source: { blank: {} } }],
    } as never,
    target: { hypervisor: 'kvm' as const, kvmUsable: false },
    disks: { root: { path: '/var/lib/libvirt/images/root.qcow2', format: 'qcow2' as const } },
  };
  const path = '/var/lib/libvirt/images/lab_web-1_cloud-init.iso';

  it('names spec.cloudInit, not spec.disks, when the seed is attached, detached or moved to another bus', () => {
    const without = buildDomainXml(base).xml;
    const onVirtio = buildDomainXml({ ...base, seed: { path, format: 'raw', bus: 'virtio' } }).xml;
    const onSata = buildDomainXml({ ...base, seed: { path, format: 'raw', bus: 'sata' } }).xml;
    for (const withSeed of [onVirtio, onSata]) {
      expect(fieldsAwaitingRestart(without, withSeed)).toEqual(['spec.cloudInit']);
      expect(fieldsAwaitingRestart(withSeed, without)).toEqual(['spec.cloudInit']);
      expect(fieldsAwaitingRestart(withSeed, withSeed)).toEqual([]);
    }
    expect(fieldsAwaitingRestart(onVirtio, onSata)).toEqual(['spec.cloudInit']);
  });
});
