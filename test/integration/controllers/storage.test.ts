// The volumes of a VM's disks on a simulated host (libvirt's test driver keeps storage pools
// and volumes in memory): blank and cloned disks are made in the HostPool's storage pool before
// the domain is defined, their paths are in the domain's XML, a clone of a missing volume says
// which field and which host, and a deleted VM takes its volumes with it. Image disks are
// downloaded by the controller from an HTTP server on 127.0.0.1 with their progress in the
// Provisioned condition; the test driver then refuses the upload (it has no streams), which is
// as far as an image gets here (the real rig moves the data).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { child, childrenNamed, parseXml } from '../../../src/hypervisors/xml.js';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import type { VmObject } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const MiB = 2 ** 20;
const HOST: HostDecl = { name: 'disk-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const STORAGE_POOL = 'vf-volumes';

const bench = new ControllerBench('vm-storage', { hostRetryMs: 1_000, imageProgressIntervalMs: 1_000 });
let pool: string;
let server: Server;
let baseUrl: string;
/** Requests the image server got, by path. */
const requests = new Map<string, number>();

/** A 4 MiB "qcow2" image (magic and a 1 GiB virtual size, then filler), sent slowly. */
const IMAGE = Buffer.alloc(4 * MiB, 0x5a);
IMAGE.writeUInt32BE(0x514649fb, 0);
IMAGE.writeUInt32BE(3, 4);
IMAGE.writeBigUInt64BE(BigInt(2 ** 30), 24);

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.set(request.url ?? '', (requests.get(request.url ?? '') ?? 0) + 1);
    if (request.url !== '/images/slow.qcow2') {
      response.writeHead(404).end('no such image');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': IMAGE.length });
    // 64 KiB every 40 ms: about 2.5 s for the whole image.
    let offset = 0;
    const timer = setInterval(() => {
      if (offset >= IMAGE.length || response.destroyed) {
        clearInterval(timer);
        response.end();
        return;
      }
      response.write(IMAGE.subarray(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    }, 40);
    response.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await bench.start();
  pool = await bench.createPool('storage', [HOST], {
    storage: { pool: STORAGE_POOL, path: `${bench.hosts.dir}/volumes` },
  });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
  // A golden volume to clone, made the way an administrator would: in the pool, on the host.
  const host = bench.hypervisor(HOST);
  await host.ensureStoragePool({ name: STORAGE_POOL, path: `${bench.hosts.dir}/volumes` });
  await host.createVolume(STORAGE_POOL, { name: 'golden', format: 'raw', capacityBytes: 64 * MiB });
});

afterAll(async () => {
  await bench.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function diskSources(xml: string): Array<{ file: string | undefined; format: string | undefined }> {
  const devices = child(parseXml(xml), 'devices');
  return (devices ? childrenNamed(devices, 'disk') : []).map((disk) => ({
    file: child(disk, 'source')?.attrs.file,
    format: child(disk, 'driver')?.attrs.type,
  }));
}

async function volumeNames(): Promise<string[]> {
  const host = bench.hypervisor(HOST);
  const names: string[] = [];
  for (const name of [
    'golden',
    ...['root', 'data', 'img', 'gone'].flatMap((disk) =>
      ['app', 'broken', 'image', 'missing'].map((vm) => `vf-${bench.namespace}_${vm}_${disk}`),
    ),
  ]) {
    if (await host.volume(STORAGE_POOL, name)) names.push(name);
  }
  return names.sort();
}

describe('disk volumes', () => {
  it('makes a blank and a cloned volume in the pool before defining the domain, which uses their paths', async () => {
    await bench.createVm('app', pool, {
      disks: [
        { name: 'root', size: '1Gi', source: { blank: {} } },
        { name: 'data', size: '128Mi', source: { clone: { volume: 'golden' } } },
      ],
    });
    const vm = await bench.untilVm('app', isRunning, 'Running');
    const host = bench.hypervisor(HOST);
    const root = await host.volume(STORAGE_POOL, `vf-${bench.namespace}_app_root`);
    const data = await host.volume(STORAGE_POOL, `vf-${bench.namespace}_app_data`);
    expect(root).toMatchObject({ format: 'qcow2', capacityBytes: 2 ** 30 });
    // The clone is grown to the disk's size (the golden volume has 64 MiB).
    expect(data).toMatchObject({ format: 'qcow2', capacityBytes: 128 * MiB });
    expect(root!.path).toBe(`${bench.hosts.dir}/volumes/vf-${bench.namespace}_app_root`);

    const xml = await host.xml(vm.metadata.uid ?? '', { inactive: true });
    expect(diskSources(xml)).toEqual([
      { file: root!.path, format: 'qcow2' },
      { file: data!.path, format: 'qcow2' },
    ]);
    expect(condition(vm, 'Provisioned')).toMatchObject({ status: 'True', reason: 'Defined' });
    const events = await bench.events('app');
    expect(events.find((e) => e.reason === 'VolumesCreated')?.message).toBe(
      `volumes for root, data created in storage pool ${STORAGE_POOL} on disk-1`,
    );
  });

  it('says which disk field and which host when a clone source is missing, and goes on once it appears', async () => {
    await bench.createVm('broken', pool, { disks: [{ name: 'data', source: { clone: { volume: 'later' } } }] });
    const failed = await bench.untilVm(
      'broken',
      (vm) => condition(vm, 'Provisioned')?.reason === 'ProvisioningFailed',
      'ProvisioningFailed',
    );
    expect(condition(failed, 'Provisioned')?.status).toBe('False');
    expect(condition(failed, 'Provisioned')?.message).toMatch(
      new RegExp(
        `^spec\\.disks\\[0\\] \\(data\\)\\.source\\.clone\\.volume: no volume later in storage pool ${STORAGE_POOL} to clone \\(host disk-1\\); retrying in 1 s$`,
      ),
    );
    expect(failed.status?.phase).toBe('Provisioning');
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'ProvisioningFailed' });
    expect(await bench.hypervisor(HOST).lookup(failed.metadata.uid ?? '')).toBeUndefined();

    await bench
      .hypervisor(HOST)
      .createVolume(STORAGE_POOL, { name: 'later', format: 'qcow2', capacityBytes: 32 * MiB });
    await bench.untilVm('broken', isRunning, 'Running once the source exists');
    expect(await bench.hypervisor(HOST).volume(STORAGE_POOL, `vf-${bench.namespace}_broken_data`)).toMatchObject({
      capacityBytes: 32 * MiB,
    });
  });

  it('deletes the VM with its domain and its volumes, and leaves other volumes alone', async () => {
    const uids = ['app', 'broken'].map((name) => bench.vm(name)!.metadata.uid);
    for (const name of ['app', 'broken']) await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, name);
    await bench.until(() => !bench.vm('app') && !bench.vm('broken'), 30_000, 'both VMs gone');
    const domains = (await bench.domains(HOST)).map((d) => d.uuid);
    for (const uid of uids) expect(domains).not.toContain(uid);
    expect(await volumeNames()).toEqual(['golden']);
    expect(await bench.hypervisor(HOST).volume(STORAGE_POOL, 'later')).toBeDefined();
  });

  it('keeps the volume of a disk with retain when the VM is deleted, and a VM of the same name uses it again', async () => {
    const disks = [
      { name: 'root', size: '64Mi', source: { blank: {} }, retain: true },
      { name: 'data', size: '64Mi', source: { blank: {} } },
    ];
    await bench.createVm('keeper', pool, { disks });
    const first = await bench.untilVm('keeper', isRunning, 'Running');
    const host = bench.hypervisor(HOST);
    const root = `vf-${bench.namespace}_keeper_root`;
    const data = `vf-${bench.namespace}_keeper_data`;

    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'keeper');
    await bench.until(() => !bench.vm('keeper'), 30_000, 'keeper gone');
    expect(await host.lookup(first.metadata.uid ?? '')).toBeUndefined();
    expect(await host.volume(STORAGE_POOL, root)).toMatchObject({ capacityBytes: 64 * MiB });
    expect(await host.volume(STORAGE_POOL, data)).toBeUndefined();
    const events = (
      await bench.kube.list<{ reason?: string; message?: string; involvedObject?: { uid?: string } } & KubeObject>(
        { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
        { namespace: bench.namespace },
      )
    ).items.filter((e) => e.involvedObject?.uid === first.metadata.uid);
    expect(events.find((e) => e.reason === 'VolumesRetained')?.message).toBe(
      `volumes ${root} kept in storage pool ${STORAGE_POOL} on disk-1 (retain: true); a VM of the same name uses them again`,
    );
    expect(events.find((e) => e.reason === 'VolumesDeleted')?.message).toBe(
      `volumes ${data} deleted from storage pool ${STORAGE_POOL} on disk-1`,
    );

    // Recreated with a smaller root disk: the kept volume is used as it is (a new one would have 32 MiB).
    await bench.createVm('keeper', pool, { disks: [{ ...disks[0], size: '32Mi' }, disks[1]] });
    const second = await bench.untilVm('keeper', isRunning, 'Running again');
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    expect(await host.volume(STORAGE_POOL, root)).toMatchObject({ capacityBytes: 64 * MiB });
    const xml = await host.xml(second.metadata.uid ?? '', { inactive: true });
    expect(diskSources(xml)[0]?.file).toBe(`${bench.hosts.dir}/volumes/${root}`);

    // Retained again at this delete; removed by hand, as an administrator would.
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'keeper');
    await bench.until(() => !bench.vm('keeper'), 30_000, 'keeper gone again');
    expect(await host.deleteVolume(STORAGE_POOL, root)).toBe(true);
  });
});

describe('image disks', () => {
  it('downloads the image with progress in Provisioned, no more often than the interval; the test driver then refuses the upload', async () => {
    const seen: Array<{ at: number; message: string }> = [];
    const off = bench.vms.on((event) => {
      if (event.object.metadata.name !== 'image') return;
      const c = condition(event.object, 'Provisioned');
      if (c?.reason === 'ProvisioningDisks' && seen.at(-1)?.message !== c.message)
        seen.push({ at: Date.now(), message: c.message });
    });
    try {
      await bench.createVm('image', pool, {
        disks: [{ name: 'root', size: '2Gi', source: { image: { url: `${baseUrl}/images/slow.qcow2` } } }],
      });
      const failed = await bench.untilVm(
        'image',
        (vm) => condition(vm, 'Provisioned')?.reason === 'ProvisioningFailed',
        'the upload refused',
        30_000,
      );
      const message = condition(failed, 'Provisioned')?.message ?? '';
      expect(message).toMatch(
        /^spec\.disks\[0\] \(root\)\.source\.image\.url: image http:\/\/127\.0\.0\.1:\d+\/images\/slow\.qcow2: upload: /,
      );
      expect(message).toMatch(/VIR_ERR_NO_SUPPORT/);
      expect(message).toMatch(/\(host disk-1\)/);
      expect(failed.status?.phase).toBe('Provisioning');
    } finally {
      off();
    }
    // Progress was shown while downloading: several steps, at least the interval apart.
    const downloading = seen.filter((s) => s.message.includes('downloading image'));
    expect(downloading.length).toBeGreaterThanOrEqual(2);
    expect(downloading[0]!.message).toMatch(
      /^spec\.disks\[0\] \(root\): downloading image http:\/\/127\.0\.0\.1:\d+\/images\/slow\.qcow2: starting$/,
    );
    expect(downloading[1]!.message).toMatch(
      /^spec\.disks\[0\] \(root\): downloading image http:\/\/127\.0\.0\.1:\d+\/images\/slow\.qcow2: \d+\.\d MiB of 4\.0 MiB \(\d+%\)$/,
    );
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(900);
    // A refused upload leaves no half-made volume behind.
    expect(await bench.hypervisor(HOST).volume(STORAGE_POOL, `vf-${bench.namespace}_image_root`)).toBeUndefined();
    const events = await bench.events('image');
    expect(events.some((e) => e.reason === 'ProvisioningFailed' && e.type === 'Warning')).toBe(true);
  });

  it('reports an image URL that cannot be downloaded with the field, the HTTP status and the host', async () => {
    await bench.createVm('missing', pool, {
      disks: [{ name: 'root', size: '1Gi', source: { image: { url: `${baseUrl}/images/none.qcow2` } } }],
    });
    const failed = await bench.untilVm(
      'missing',
      (vm) => condition(vm, 'Provisioned')?.reason === 'ImageDownloadFailed',
      'ImageDownloadFailed',
    );
    expect(condition(failed, 'Provisioned')?.message).toMatch(
      /^spec\.disks\[0\] \(root\)\.source\.image\.url: image http:\/\/127\.0\.0\.1:\d+\/images\/none\.qcow2: HTTP 404 Not Found \(host disk-1\); retrying in 1 s$/,
    );
  });

  it('retries a failed image with a doubling delay, and a reconcile for another reason does not start one early', async () => {
    const retryingIn = (seconds: number) => (vm: VmObject) =>
      condition(vm, 'Provisioned')?.message?.endsWith(`retrying in ${seconds} s`) === true;
    await bench.untilVm('missing', retryingIn(2), 'the second failure');
    await bench.untilVm('missing', retryingIn(4), 'the third failure');
    // Three attempts so far, each a whole download; the fourth is 4 s away.
    expect(requests.get('/images/none.qcow2')).toBe(3);
    const patched = await bench.patchVm('missing', { recovery: { priority: 5 } });
    const seen = await bench.untilVm(
      'missing',
      (vm) => vm.status?.observedGeneration === patched.metadata.generation,
      'the spec change seen',
    );
    expect(retryingIn(4)(seen)).toBe(true);
    expect(requests.get('/images/none.qcow2')).toBe(3);
  });

  it('stops a download when its VM is deleted', async () => {
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'missing');
    await bench.createVm('gone', pool, {
      disks: [{ name: 'root', size: '1Gi', source: { image: { url: `${baseUrl}/images/slow.qcow2` } } }],
    });
    await bench.untilVm(
      'gone',
      (vm) => /downloading image/.test(condition(vm, 'Provisioned')?.message ?? ''),
      'downloading',
    );
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'gone');
    await bench.until(() => !bench.vm('gone') && !bench.vm('missing'), 10_000, 'deleted during the download');
    expect(await volumeNames()).toEqual(['golden']);
  });
});
