// What a live migration does with a VM's disks (src/controllers/vm/migration-storage.ts), against
// two libvirt test-driver hosts: shared, copied (the destination's volumes made first, removed
// again after a failure, once the destination no longer holds the incoming domain) or refused
// with the cause and the fix, before anything is made.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { VmObject } from '../../../src/controllers/resources.js';
import { volumeNameOf } from '../../../src/controllers/vm-storage.js';
import {
  domainStorage,
  planStorage,
  prepareDestination,
  settleCopies,
  type StoragePlan,
} from '../../../src/controllers/vm/migration-storage.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { el, serializeXml, type XmlElement } from '../../../src/hypervisors/xml.js';
import { testHosts, type TestHosts } from './test-hosts.js';

const POOL = 'vf';
const DIR = '/var/lib/virtfleet-test/vf';
const GiB = 2 ** 30;

function vmObject(disks: string[]): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: `vm-${randomUUID().slice(0, 6)}`, namespace: 'default', uid: randomUUID() },
    spec: { disks: disks.map((name) => ({ name })) },
  } as unknown as VmObject;
}

function domainXml(devices: XmlElement[]): string {
  return serializeXml(el('domain', { type: 'kvm' }, el('name', {}, 'x'), el('devices', {}, ...devices)));
}

function fileDisk(file: string, target: string, extra: { cdrom?: boolean; readOnly?: boolean } = {}): XmlElement {
  return el(
    'disk',
    { type: 'file', device: extra.cdrom ? 'cdrom' : 'disk' },
    el('source', { file }),
    el('target', { dev: target }),
    extra.readOnly ? el('readonly', {}) : undefined,
  );
}

describe('migration storage plan (test driver)', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let a: LibvirtHypervisor;
  let b: LibvirtHypervisor;
  const ends = () => ({ source: { name: 'a', hypervisor: a }, destination: { name: 'b', hypervisor: b } });

  beforeAll(async () => {
    hosts = testHosts();
    pool = new LibvirtConnectionPool({ reconnect: { initialMs: 1, maxMs: 4 } });
    a = new LibvirtHypervisor(pool, hosts.host('a'));
    b = new LibvirtHypervisor(pool, hosts.host('b'));
    await a.ensureStoragePool({ name: POOL, path: DIR });
  });
  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  /** A VM with one disk `root` of `bytes`, its volume made on host a. */
  async function vmWithDisk(bytes = GiB): Promise<{ vm: VmObject; xml: string; volume: string }> {
    const vm = vmObject(['root']);
    const volume = volumeNameOf(vm, 'root');
    await a.createVolume(POOL, { name: volume, format: 'qcow2', capacityBytes: bytes });
    return { vm, xml: domainXml([fileDisk(`${DIR}/${volume}`, 'vda')]), volume };
  }

  it('reads the files and host devices of a live XML', () => {
    const xml = domainXml([
      fileDisk('/d/root', 'vda'),
      fileDisk('/d/seed.iso', 'sda', { cdrom: true }),
      el('disk', { type: 'file', device: 'cdrom' }, el('target', { dev: 'sdb' })),
      el('hostdev', { type: 'pci' }, el('source', {}, el('address', { bus: '0x03', slot: '0x00' }))),
    ]);
    expect(domainStorage(xml)).toEqual({
      files: [
        { target: 'vda', device: 'disk', file: '/d/root', readOnly: false },
        { target: 'sda', device: 'cdrom', file: '/d/seed.iso', readOnly: true },
      ],
      hostDevices: ['pci (bus=0x03 slot=0x00)'],
    });
  });

  it('moves nothing for a VM without disks, and copies nothing from shared storage', async () => {
    const { vm, xml } = await vmWithDisk();
    const storage = { pool: POOL, shared: false };
    expect(await planStorage({ vm, storage, xml: domainXml([]), ...ends() })).toEqual({ ok: true, storage: 'None' });
    expect(await planStorage({ vm, storage: { ...storage, shared: true }, xml, ...ends() })).toEqual({
      ok: true,
      storage: 'Shared',
    });
  });

  it('refuses a host device, and a file outside the pool, naming them and the fix', async () => {
    const { vm, xml } = await vmWithDisk();
    const storage = { pool: POOL, shared: true };
    const withHostdev = xml.replace('</devices>', "<hostdev type='usb'/></devices>");
    expect(await planStorage({ vm, storage, xml: withHostdev, ...ends() })).toEqual({
      ok: false,
      message:
        'host device usb attached to the domain on a: a host device cannot move with a live migration; detach it, or stop the VM to move it',
    });
    const withIso = xml.replace(
      '</devices>',
      "<disk type='file' device='cdrom'><source file='/isos/x.iso'/><target dev='sda'/></disk></devices>",
    );
    expect(await planStorage({ vm, storage, xml: withIso, ...ends() })).toMatchObject({
      ok: false,
      message: expect.stringMatching(
        /^CD-ROM sda \(\/isos\/x\.iso\) on a is not in the HostPool's storage pool vf: b may not have that file; eject or detach it/,
      ),
    });
  });

  it('refuses a local disk when the destination lacks the pool, or has it over another directory', async () => {
    const { vm, xml } = await vmWithDisk();
    const storage = { pool: POOL, shared: false };
    expect(await planStorage({ vm, storage, xml, ...ends() })).toEqual({
      ok: false,
      message:
        'host b has no storage pool vf to copy the disks into, and HostPool spec.storage.path is unset so it cannot be made: define pool vf on b, or set spec.storage.path',
    });
    const other = new LibvirtHypervisor(pool, hosts.host('other-dir'));
    await other.ensureStoragePool({ name: POOL, path: '/elsewhere' });
    expect(
      await planStorage({
        vm,
        storage,
        xml,
        source: { name: 'a', hypervisor: a },
        destination: { name: 'c', hypervisor: other },
      }),
    ).toMatchObject({
      ok: false,
      message: expect.stringContaining(`storage pool vf is over ${DIR} on a but over /elsewhere on c`),
    });
  });

  it('refuses when the destination pool lacks room, naming the pool and the shortfall in bytes', async () => {
    const { vm, xml } = await vmWithDisk(60 * GiB);
    const small = new LibvirtHypervisor(pool, hosts.host('small'));
    const { availableBytes } = await small.ensureStoragePool({ name: POOL, path: DIR });
    await small.createVolume(POOL, { name: 'filler', format: 'raw', capacityBytes: availableBytes - 50 * GiB });
    const needed = (await a.volume(POOL, volumeNameOf(vm, 'root')))!.allocationBytes;
    const plan = await planStorage({
      vm,
      storage: { pool: POOL, shared: false },
      xml,
      source: { name: 'a', hypervisor: a },
      destination: { name: 'small', hypervisor: small },
    });
    expect(plan).toEqual({
      ok: false,
      message: `storage pool vf on small has ${50 * GiB} bytes free, the copies need ${needed} (the disks' allocation on a): short by ${needed - 50 * GiB} bytes; free space in pool vf on small, or move the VM where there is room (virtfleet vm migrate --to)`,
    });
    expect(needed).toBeGreaterThan(50 * GiB);
    expect(await small.volume(POOL, volumeNameOf(vm, 'root'))).toBeUndefined();
  });

  it('plans a copy, makes the volumes on the destination, refuses a second time while they are there, and removes them after a failure', async () => {
    const { vm, xml, volume } = await vmWithDisk(2 * GiB);
    const storage = { pool: POOL, path: DIR, shared: false };
    const plan = (await planStorage({ vm, storage, xml, ...ends() })) as Extract<StoragePlan, { storage: 'Copied' }>;
    expect(plan).toMatchObject({
      ok: true,
      storage: 'Copied',
      pool: POOL,
      volumes: [{ disk: 'root', volume, format: 'qcow2', capacityBytes: 2 * GiB, readOnly: false }],
    });
    expect(await prepareDestination(plan, a, b)).toEqual([volume]);
    expect(await b.volume(POOL, volume)).toMatchObject({ capacityBytes: 2 * GiB, format: 'qcow2' });
    expect(await planStorage({ vm, storage, xml, ...ends() })).toMatchObject({
      ok: false,
      message: expect.stringContaining(`volume ${volume} already exists in storage pool vf on b`),
    });
    // The migration failed; the domain is not on b: its half-copied volume goes, a's stays.
    expect(await settleCopies(vm.metadata.uid!, POOL, [volume], false, ends().source, ends().destination)).toBe(
      `volumes ${volume} removed from b (half-copied)`,
    );
    expect(await b.volume(POOL, volume)).toBeUndefined();
    expect(await a.volume(POOL, volume)).toBeDefined();
  });
});

describe('after a failed storage copy, the incoming domain still on the destination (test driver)', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let a: LibvirtHypervisor;
  let b: LibvirtHypervisor;
  const ends = () => ({ source: { name: 'a', hypervisor: a }, destination: { name: 'b', hypervisor: b } });

  beforeAll(async () => {
    hosts = testHosts();
    pool = new LibvirtConnectionPool({ reconnect: { initialMs: 1, maxMs: 4 } });
    a = new LibvirtHypervisor(pool, hosts.host('a'));
    b = new LibvirtHypervisor(pool, hosts.host('b'));
    await b.ensureStoragePool({ name: POOL, path: DIR });
  });

  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  /** A half-copied volume on b and, with its UUID, a domain on b in the given state. */
  async function leftover(state: 'paused' | 'running'): Promise<{ uid: string; volume: string }> {
    const uid = randomUUID();
    const volume = `left-${uid.slice(0, 8)}`;
    await b.createVolume(POOL, { name: volume, format: 'qcow2', capacityBytes: GiB });
    const xml = serializeXml(
      el(
        'domain',
        { type: 'test' },
        el('name', {}, `incoming-${uid.slice(0, 8)}`),
        el('uuid', {}, uid),
        el('memory', { unit: 'MiB' }, '64'),
        el('os', {}, el('type', {}, 'hvm')),
      ),
    );
    await b.ensureDefined(xml);
    await b.start(uid);
    if (state === 'paused') await b.suspend(uid);
    return { uid, volume };
  }

  it('waits for a domain that does not run there to go, then removes the half-copied volume', async () => {
    const { uid, volume } = await leftover('paused');
    // libvirt there ends the incoming domain a while later (its keepalive with the source).
    const gone = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        b.destroy(uid)
          .then(() => b.undefine(uid))
          .then(resolve, reject);
      }, 1500);
    });
    const settled = await settleCopies(uid, POOL, [volume], false, ends().source, ends().destination, 30_000);
    await gone;
    expect(settled).toBe(`volumes ${volume} removed from b (half-copied)`);
    expect(await b.volume(POOL, volume)).toBeUndefined();
  });

  it('keeps the volume when that domain is still there after the wait, or looked at once', async () => {
    const { uid, volume } = await leftover('paused');
    expect(await settleCopies(uid, POOL, [volume], false, ends().source, ends().destination, 1200)).toBe(
      `the domain is still on b (paused/user): its volumes there are kept`,
    );
    expect(await settleCopies(uid, POOL, [volume], false, ends().source, ends().destination)).toBe(
      `the domain is still on b (paused/user): its volumes there are kept`,
    );
    expect(await b.volume(POOL, volume)).toBeDefined();
  });

  it('keeps the volume at once when the domain runs there (the migration went through after all)', async () => {
    const { uid, volume } = await leftover('running');
    expect(await settleCopies(uid, POOL, [volume], false, ends().source, ends().destination, 30_000)).toMatch(
      /^the domain is still on b \(running\/\w+\): its volumes there are kept$/,
    );
    expect(await b.volume(POOL, volume)).toBeDefined();
  });
});
