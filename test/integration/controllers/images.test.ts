// VirtualMachineImages on simulated hosts (libvirt's test driver keeps pools and volumes in
// memory), with the controllers on the real API server: an image copied from a pool volume is
// Ready on every host of its pool (once for shared storage), VM disks from it are linked clones
// (a qcow2 overlay whose backing store is the image's volume) or full copies, and deleting the
// image waits while VMs use it, then takes its volumes. URL images come from an HTTP server on
// 127.0.0.1 started here: a wrong checksum, a 404 and a compressed file fail with the field to
// fix; a good image fails at the test driver's upload (it has no streams) and leaves no volume
// behind. The upload itself is covered on real libvirtd (test/e2e/images-rig.test.ts).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { VIRTUAL_MACHINE_IMAGE, imageVolumeName, type ImageObject } from '../../../src/controllers/image/resource.js';
import { child, childrenNamed, parseXml } from '../../../src/hypervisors/xml.js';
import { Cache } from '../../../src/runtime/cache.js';
import type { Informer } from '../../../src/runtime/informer.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { kstatusOf } from '../../harness/kstatus.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const MiB = 2 ** 20;
const HOSTS: HostDecl[] = [
  { name: 'img-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' },
  { name: 'img-2', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' },
];
const SHARED_HOST: HostDecl = { name: 'img-s', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const STORAGE_POOL = 'vf-images';

const bench = new ControllerBench('vm-images', { hostRetryMs: 1_000, imageProgressIntervalMs: 500 });
let pool: string;
let sharedPool: string;
let images: Informer<ImageObject & KubeObject>;
const stopImages = new AbortController();
let imagesRun: Promise<void>;
let server: Server;
let baseUrl: string;

/** A small qcow2 header (version 3, 256 MiB virtual size, no backing file), then filler. */
const QCOW2 = Buffer.alloc(MiB, 0);
QCOW2.writeUInt32BE(0x514649fb, 0);
QCOW2.writeUInt32BE(3, 4);
QCOW2.writeBigUInt64BE(BigInt(256 * MiB), 24);
const GZIPPED = gzipSync(Buffer.alloc(MiB, 7));
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  server = createServer((request, response) => {
    const body = request.url === '/disk.qcow2' ? QCOW2 : request.url === '/disk.raw.gz' ? GZIPPED : undefined;
    if (!body) {
      response.writeHead(404).end('no such image');
      return;
    }
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await bench.start();
  const cache = new Cache(bench.kube, bench.logs.logger);
  images = cache.informerFor<ImageObject & KubeObject>(VIRTUAL_MACHINE_IMAGE, { namespace: bench.namespace });
  images.on(() => bench.changed.poke());
  imagesRun = cache.run(stopImages.signal);
  await cache.waitForSync();

  const storage = { pool: STORAGE_POOL, path: `${bench.hosts.dir}/images` };
  pool = await bench.createPool('images', HOSTS, { storage });
  sharedPool = await bench.createPool('shared', [SHARED_HOST], {
    storage: { pool: 'vf-shared', path: `${bench.hosts.dir}/shared`, shared: true },
  });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'hosts ready');
  await bench.untilPool(sharedPool, (p) => p.status?.readyHosts === 1, 'shared host ready');
  // The golden volume each host has, as an administrator would make it.
  for (const host of HOSTS) {
    const hypervisor = bench.hypervisor(host);
    await hypervisor.ensureStoragePool({ name: STORAGE_POOL, path: storage.path });
    await hypervisor.createVolume(STORAGE_POOL, { name: 'golden', format: 'qcow2', capacityBytes: 64 * MiB });
  }
  const shared = bench.hypervisor(SHARED_HOST);
  await shared.ensureStoragePool({ name: 'vf-shared', path: `${bench.hosts.dir}/shared` });
  await shared.createVolume('vf-shared', { name: 'golden', format: 'raw', capacityBytes: 32 * MiB });
});

afterAll(async () => {
  for (const vm of bench.vms.list())
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, vm.metadata.name ?? '').catch(() => undefined);
  await bench.until(() => bench.vms.list().length === 0, 60_000, 'VMs gone');
  for (const image of images.list())
    await bench.kube.delete(VIRTUAL_MACHINE_IMAGE, bench.namespace, image.metadata.name ?? '').catch(() => undefined);
  await bench.until(() => images.list().length === 0, 60_000, 'images gone');
  stopImages.abort();
  await imagesRun;
  await bench.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function createImage(name: string, poolName: string, source: Record<string, unknown>) {
  return bench.kube.create(VIRTUAL_MACHINE_IMAGE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineImage',
    metadata: { name, namespace: bench.namespace },
    spec: { hostPoolRef: { name: poolName }, source },
  });
}

const image = (name: string) => images.get(`${bench.namespace}/${name}`);

async function untilImage(name: string, check: (i: ImageObject) => boolean, what: string): Promise<ImageObject> {
  await bench.until(
    () => {
      const found = image(name);
      return found !== undefined && check(found);
    },
    30_000,
    `${name}: ${what} (last status: ${JSON.stringify(image(name)?.status)})`,
  );
  return image(name)!;
}

async function imageEvents(name: string) {
  const uid = image(name)?.metadata.uid;
  const list = await bench.kube.list<
    KubeObject & { reason?: string; message?: string; type?: string; involvedObject?: { uid?: string } }
  >({ kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: bench.namespace });
  return list.items.filter((event) => event.involvedObject?.uid === uid);
}

describe('images from a pool volume', () => {
  it('is Ready on every host of the pool, with its format and size, and kstatus sees it Current', async () => {
    await createImage('golden', pool, { volume: { name: 'golden' } });
    const ready = await untilImage('golden', (i) => i.status?.phase === 'Ready', 'Ready');
    const volume = imageVolumeName(bench.namespace, 'golden');
    expect(ready.status).toMatchObject({ format: 'qcow2', sizeBytes: 64 * MiB, shared: false, hostPool: pool });
    expect(ready.status?.hosts?.map((h) => [h.name, h.phase, h.volume])).toEqual([
      ['img-1', 'Ready', volume],
      ['img-2', 'Ready', volume],
    ]);
    expect(condition(ready, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Imported',
      observedGeneration: ready.metadata.generation,
    });
    expect(condition(ready, 'Stalled')).toBeUndefined();
    expect(condition(ready, 'Reconciling')).toBeUndefined();
    // What Flux and kubectl-based waits compute (sigs.k8s.io/cli-utils kstatus).
    expect((await kstatusOf(ready)).status).toBe('Current');
    expect(ready.metadata.finalizers).toContain('virtfleet.io/image-volumes');
    for (const host of HOSTS)
      expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toMatchObject({
        format: 'qcow2',
        capacityBytes: 64 * MiB,
      });
    expect((await imageEvents('golden')).map((e) => e.reason)).toContain('Imported');
  });

  it('is imported once for a pool whose storage is shared', async () => {
    await createImage('once', sharedPool, { volume: { name: 'golden' } });
    const ready = await untilImage('once', (i) => i.status?.phase === 'Ready', 'Ready');
    expect(ready.status).toMatchObject({ shared: true, format: 'raw', sizeBytes: 32 * MiB });
    expect(ready.status?.hosts?.map((h) => h.name)).toEqual(['img-s']);
  });

  it('imports again when the source changes, but not while a VM uses the image', async () => {
    for (const host of HOSTS)
      await bench
        .hypervisor(host)
        .createVolume(STORAGE_POOL, { name: 'silver', format: 'raw', capacityBytes: 16 * MiB });
    await createImage('changing', pool, { volume: { name: 'golden' } });
    await untilImage('changing', (i) => i.status?.phase === 'Ready', 'Ready');
    const volume = imageVolumeName(bench.namespace, 'changing');

    const patched = await bench.kube.patch<ImageObject>(VIRTUAL_MACHINE_IMAGE, bench.namespace, 'changing', {
      spec: { source: { volume: { name: 'silver' } } },
    });
    // The watch may still show the old generation Ready: wait for the patched one.
    const again = await untilImage(
      'changing',
      (i) => i.status?.phase === 'Ready' && i.status.observedGeneration === patched.metadata.generation,
      'Ready from the new source',
    );
    expect(again.status).toMatchObject({ format: 'raw', sizeBytes: 16 * MiB });
    for (const host of HOSTS)
      expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toMatchObject({
        format: 'raw',
        capacityBytes: 16 * MiB,
      });

    await bench.createVm('user', pool, { disks: [{ name: 'root', source: { image: { name: 'changing' } } }] });
    await bench.untilVm('user', isRunning, 'Running');
    await bench.kube.patch(VIRTUAL_MACHINE_IMAGE, bench.namespace, 'changing', {
      spec: { source: { volume: { name: 'golden' } } },
    });
    const held = await untilImage('changing', (i) => condition(i, 'Ready')?.reason === 'InUse', 'InUse');
    expect(condition(held, 'Ready')?.message).toMatch(/^spec changed while VMs user use the image: /);
    expect(condition(held, 'Stalled')).toMatchObject({ status: 'True', reason: 'InUse' });
    expect(held.status).toMatchObject({ phase: 'Failed', format: 'raw', sizeBytes: 16 * MiB });
    for (const host of HOSTS)
      expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toMatchObject({ format: 'raw' });

    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'user');
    const renewed = await untilImage(
      'changing',
      (i) => i.status?.phase === 'Ready' && i.status.format === 'qcow2',
      'imported again once the VM is gone',
    );
    expect(renewed.status?.sizeBytes).toBe(64 * MiB);
    for (const host of HOSTS)
      expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toMatchObject({ format: 'qcow2' });
  });

  it('replaces a volume of its name that its status does not show Ready (a half-made import of an earlier run)', async () => {
    const volume = imageVolumeName(bench.namespace, 'leftover');
    const host = bench.hypervisor(HOSTS[0]!);
    await host.createVolume(STORAGE_POOL, { name: volume, format: 'raw', capacityBytes: MiB });
    await createImage('leftover', pool, { volume: { name: 'golden' } });
    await untilImage('leftover', (i) => i.status?.phase === 'Ready', 'Ready');
    expect(await host.volume(STORAGE_POOL, volume)).toMatchObject({ format: 'qcow2', capacityBytes: 64 * MiB });
  });

  it('fails naming spec.source.volume when a host lacks the volume, and keeps nothing', async () => {
    await createImage('absent', pool, { volume: { name: 'nowhere' } });
    const failed = await untilImage('absent', (i) => i.status?.phase === 'Failed', 'Failed');
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'SourceVolumeNotFound' });
    expect(condition(failed, 'Ready')?.message).toMatch(
      /^spec\.source\.volume: no volume nowhere in storage pool vf-images on host img-[12]; /,
    );
    expect(condition(failed, 'Stalled')).toMatchObject({ status: 'True', reason: 'SourceVolumeNotFound' });
    expect(
      await bench.hypervisor(HOSTS[0]!).volume(STORAGE_POOL, imageVolumeName(bench.namespace, 'absent')),
    ).toBeUndefined();
  });
});

describe('disks from images', () => {
  it('makes a linked clone backed by the image volume, and with copy: true a full copy, grown to size', async () => {
    await bench.createVm('linked', pool, {
      disks: [{ name: 'root', size: '128Mi', source: { image: { name: 'golden' } } }],
    });
    await bench.createVm('copied', pool, {
      disks: [{ name: 'root', size: '96Mi', source: { image: { name: 'golden', copy: true } } }],
    });
    const linked = await bench.untilVm('linked', isRunning, 'Running');
    const copied = await bench.untilVm('copied', isRunning, 'Running');
    const imagePath = image('golden')!.status!.hosts!.find((h) => h.name === linked.status?.host)!.path;
    const linkedHost = HOSTS.find((h) => h.name === linked.status?.host)!;
    const copiedHost = HOSTS.find((h) => h.name === copied.status?.host)!;
    const overlay = await bench.hypervisor(linkedHost).volume(STORAGE_POOL, `vf-${bench.namespace}_linked_root`);
    expect(overlay).toMatchObject({ format: 'qcow2', capacityBytes: 128 * MiB, backingPath: imagePath });
    const copy = await bench.hypervisor(copiedHost).volume(STORAGE_POOL, `vf-${bench.namespace}_copied_root`);
    expect(copy).toMatchObject({ format: 'qcow2', capacityBytes: 96 * MiB });
    expect(copy?.backingPath).toBeUndefined();
  });

  it('says which field when the image does not exist', async () => {
    await bench.createVm('orphan', pool, { disks: [{ name: 'root', source: { image: { name: 'nosuch' } } }] });
    const vm = await bench.untilVm(
      'orphan',
      (v) => condition(v, 'Provisioned')?.reason === 'ProvisioningFailed',
      'ProvisioningFailed',
    );
    expect(condition(vm, 'Provisioned')?.message).toMatch(
      /^spec\.disks\[0\] \(root\)\.source\.image\.name: no VirtualMachineImage nosuch in namespace .*: create it, or fix the name \(host img-[12]\)/,
    );
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'orphan');
  });

  it('refuses url and name together at the API server', async () => {
    await expect(
      bench.createVm('both', pool, {
        disks: [{ name: 'root', source: { image: { name: 'golden', url: 'http://127.0.0.1/x' } } }],
      }),
    ).rejects.toThrow(/set exactly one of url or name/);
  });
});

describe('deleting an image', () => {
  it('waits while VMs use it, naming them, then deletes its volumes on every host', async () => {
    await bench.kube.delete(VIRTUAL_MACHINE_IMAGE, bench.namespace, 'golden');
    const blocked = await untilImage('golden', (i) => i.status?.phase === 'Deleting', 'Deleting');
    expect(condition(blocked, 'Ready')).toMatchObject({ status: 'False', reason: 'InUse' });
    expect(condition(blocked, 'Ready')?.message).toBe(
      'deletion waits: VMs copied, linked use the image (spec.disks[].source.image.name); delete them or change their disks',
    );
    expect((await imageEvents('golden')).find((e) => e.reason === 'DeletionBlocked')?.type).toBe('Warning');
    const volume = imageVolumeName(bench.namespace, 'golden');
    expect(await bench.hypervisor(HOSTS[0]!).volume(STORAGE_POOL, volume)).toBeDefined();

    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'linked');
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'copied');
    await bench.until(() => image('golden') === undefined, 30_000, 'image gone once no VM uses it');
    for (const host of HOSTS) expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toBeUndefined();
    // The administrator's volume it was copied from stays.
    expect(await bench.hypervisor(HOSTS[0]!).volume(STORAGE_POOL, 'golden')).toBeDefined();
  });
});

describe('images from a URL', () => {
  it('fails with both sums on a wrong checksum, as a condition and an Event, and keeps no volume', async () => {
    const wrong = 'a'.repeat(64);
    await createImage('bad-sum', pool, { url: `${baseUrl}/disk.qcow2`, sha256: wrong });
    const failed = await untilImage('bad-sum', (i) => i.status?.phase === 'Failed', 'Failed');
    const message = `spec.source.sha256: the downloaded ${QCOW2.length} bytes have sha256 ${sha(QCOW2)}, not ${wrong}; correct spec.source.sha256 if the file is the one you meant, else spec.source.url`;
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'ChecksumMismatch', message });
    expect(condition(failed, 'Stalled')).toMatchObject({ status: 'True', reason: 'ChecksumMismatch' });
    expect((await kstatusOf(failed)).status).toBe('Failed');
    expect(failed.status?.checksumVerified).toBeUndefined();
    const events = await imageEvents('bad-sum');
    expect(events.find((e) => e.reason === 'ImportFailed')).toMatchObject({ type: 'Warning', message });
    for (const host of HOSTS)
      expect(
        await bench.hypervisor(host).volume(STORAGE_POOL, imageVolumeName(bench.namespace, 'bad-sum')),
      ).toBeUndefined();
  });

  it('fails with the HTTP status for a URL that answers 404', async () => {
    await createImage('missing', pool, { url: `${baseUrl}/nothing.qcow2`, sha256: sha(QCOW2) });
    const failed = await untilImage('missing', (i) => i.status?.phase === 'Failed', 'Failed');
    expect(condition(failed, 'Ready')).toMatchObject({ reason: 'DownloadFailed' });
    expect(condition(failed, 'Ready')?.message).toMatch(
      /^spec\.source\.url: http:\/\/127\.0\.0\.1:\d+\/nothing\.qcow2: HTTP 404 Not Found; /,
    );
  });

  it('refuses a compressed file that would pass for raw, saying how to fix it', async () => {
    await createImage('gzipped', pool, { url: `${baseUrl}/disk.raw.gz`, sha256: sha(GZIPPED) });
    const failed = await untilImage('gzipped', (i) => i.status?.phase === 'Failed', 'Failed');
    expect(condition(failed, 'Ready')).toMatchObject({
      reason: 'UnsupportedFormat',
      message:
        'spec.source.url: the file is gzip-compressed, not a qcow2, raw or iso image: serve the uncompressed image (gunzip)',
    });
  });

  it('verifies and detects a good image, and leaves no volume when the host refuses the upload', async () => {
    await createImage('good', pool, { url: `${baseUrl}/disk.qcow2`, sha256: sha(QCOW2) });
    const failed = await untilImage('good', (i) => i.status?.phase === 'Failed', 'Failed at the upload');
    expect(failed.status).toMatchObject({
      format: 'qcow2',
      sizeBytes: 256 * MiB,
      sha256: sha(QCOW2),
      checksumVerified: true,
    });
    expect(condition(failed, 'Ready')).toMatchObject({ reason: 'ImportFailed' });
    expect(condition(failed, 'Ready')?.message).toMatch(/^host img-[12]: .*not supported/);
    for (const host of HOSTS)
      expect(
        await bench.hypervisor(host).volume(STORAGE_POOL, imageVolumeName(bench.namespace, 'good')),
      ).toBeUndefined();
  });
});

// Uploaded images (spec.source.upload): `virtfleet api` writes the hosts' volumes and
// status.upload (test/integration/apiserver/image-upload.test.ts); here status.upload is written
// as it writes it, and the volumes made as it makes them, to see what the controller does with them.
describe('uploaded images', () => {
  const writeUpload = (name: string, upload: Record<string, unknown>) =>
    bench.kube.patch(
      VIRTUAL_MACHINE_IMAGE,
      bench.namespace,
      name,
      { status: { upload: { fingerprint: image(name)?.status?.importedSpec, ...upload } } },
      { subresource: 'status' },
    );

  it('waits for its upload, naming the command, then is Ready on the hosts the upload wrote', async () => {
    await createImage('uploaded', pool, { upload: {} });
    const waiting = await untilImage(
      'uploaded',
      (i) => condition(i, 'Ready')?.reason === 'WaitingForUpload',
      'waiting for its upload',
    );
    expect(waiting.status?.phase).toBe('Pending');
    expect(condition(waiting, 'Ready')?.message).toContain(
      `no content yet; upload it: virtfleet image upload uploaded -n ${bench.namespace} --file FILE`,
    );
    expect(condition(waiting, 'Reconciling')).toMatchObject({ status: 'True' });

    // While the upload runs: Importing, and the controller leaves the half-written volume alone.
    const volume = imageVolumeName(bench.namespace, 'uploaded');
    await bench.hypervisor(HOSTS[0]!).createVolume(STORAGE_POOL, { name: volume, format: 'qcow2', capacityBytes: MiB });
    await writeUpload('uploaded', {
      state: 'Uploading',
      progress: 'to host img-1 (1 of 2)',
      updatedAt: new Date().toISOString(),
    });
    const importing = await untilImage('uploaded', (i) => i.status?.phase === 'Importing', 'Importing');
    expect(importing.status?.hosts?.[0]).toMatchObject({
      phase: 'Importing',
      progress: 'uploading to host img-1 (1 of 2)',
    });
    expect(await bench.hypervisor(HOSTS[0]!).volume(STORAGE_POOL, volume)).toBeDefined();

    // Done on img-1 only (img-2 was not reached): img-1 Ready, img-2 waits for another upload.
    const facts = { format: 'qcow2', sizeBytes: MiB, sha256: 'a'.repeat(64), checksumVerified: true };
    await writeUpload('uploaded', { state: 'Done', ...facts, hosts: ['img-1'], updatedAt: new Date().toISOString() });
    const partly = await untilImage(
      'uploaded',
      (i) => i.status?.hosts?.some((h) => h.name === 'img-1' && h.phase === 'Ready') === true,
      'Ready on img-1',
    );
    expect(partly.status?.phase).toBe('Pending');
    expect(partly.status?.hosts?.find((h) => h.name === 'img-2')?.message).toMatch(
      /the upload did not reach host img-2.*upload it: virtfleet image upload uploaded/,
    );

    await bench.hypervisor(HOSTS[1]!).createVolume(STORAGE_POOL, { name: volume, format: 'qcow2', capacityBytes: MiB });
    await writeUpload('uploaded', {
      state: 'Done',
      ...facts,
      hosts: ['img-1', 'img-2'],
      updatedAt: new Date().toISOString(),
    });
    const ready = await untilImage('uploaded', (i) => i.status?.phase === 'Ready', 'Ready');
    expect(ready.status).toMatchObject({ ...facts, shared: false });
    expect(ready.status?.upload).toMatchObject({ state: 'Done', hosts: ['img-1', 'img-2'] });
    expect((await kstatusOf(ready)).status).toBe('Current');
  });

  it('is Failed and Stalled when its upload failed, and takes a stopped upload for none', async () => {
    await createImage('upload-failed', pool, { upload: {} });
    await untilImage('upload-failed', (i) => i.status?.importedSpec !== undefined, 'a status');
    await writeUpload('upload-failed', {
      state: 'Failed',
      reason: 'UploadIncomplete',
      message: 'the upload was cut after 10 of 20 bytes: nothing was kept; run the upload again',
      updatedAt: new Date().toISOString(),
    });
    const failed = await untilImage('upload-failed', (i) => i.status?.phase === 'Failed', 'Failed');
    expect(condition(failed, 'Ready')).toMatchObject({ reason: 'UploadIncomplete' });
    // Nothing retries by itself: a person runs the upload again.
    expect(condition(failed, 'Stalled')).toMatchObject({ status: 'True', reason: 'UploadIncomplete' });
    // An upload whose API server stopped writing a minute ago is no upload.
    await writeUpload('upload-failed', {
      state: 'Receiving',
      progress: '40%',
      reason: null,
      message: null,
      updatedAt: new Date(Date.now() - 120_000).toISOString(),
    });
    const stopped = await untilImage(
      'upload-failed',
      (i) => condition(i, 'Ready')?.reason === 'WaitingForUpload',
      'waiting again',
    );
    expect(condition(stopped, 'Ready')?.message).toMatch(/the upload stopped \(Receiving, last written/);
  });
});

describe('CD-ROMs from images', () => {
  it('attaches an ISO image read-only with its boot order, copies nothing, and keeps the image at deletion', async () => {
    await createImage('installer', pool, { upload: {} });
    await untilImage('installer', (i) => i.status?.importedSpec !== undefined, 'a status');
    const volume = imageVolumeName(bench.namespace, 'installer');
    for (const host of HOSTS)
      await bench.hypervisor(host).createVolume(STORAGE_POOL, { name: volume, format: 'raw', capacityBytes: 4 * MiB });
    await bench.kube.patch(
      VIRTUAL_MACHINE_IMAGE,
      bench.namespace,
      'installer',
      {
        status: {
          upload: {
            fingerprint: image('installer')?.status?.importedSpec,
            state: 'Done',
            format: 'iso',
            sizeBytes: 4 * MiB,
            hosts: HOSTS.map((h) => h.name),
            updatedAt: new Date().toISOString(),
          },
        },
      },
      { subresource: 'status' },
    );
    await untilImage('installer', (i) => i.status?.phase === 'Ready', 'Ready');
    await bench.createVm('from-cd', pool, {
      disks: [
        { name: 'root', size: '64Mi', bootOrder: 2, source: { blank: {} } },
        { name: 'install', type: 'cdrom', bootOrder: 1, source: { image: { name: 'installer' } } },
      ],
    });
    const vm = await bench.untilVm('from-cd', isRunning, 'Running');
    const host = HOSTS.find((h) => h.name === vm.status?.host)!;
    const isoPath = image('installer')!.status!.hosts!.find((h) => h.name === host.name)!.path;
    const xml = await bench.hypervisor(host).xml(vm.metadata.uid ?? '', { inactive: true });
    const disks = childrenNamed(child(parseXml(xml), 'devices')!, 'disk');
    const cdrom = disks.find((d) => d.attrs.device === 'cdrom')!;
    expect(child(cdrom, 'source')?.attrs.file).toBe(isoPath);
    expect(child(cdrom, 'driver')?.attrs.type).toBe('raw');
    expect(child(cdrom, 'target')?.attrs).toMatchObject({ dev: 'sda', bus: 'sata' });
    expect(child(cdrom, 'readonly')).toBeDefined();
    expect(child(cdrom, 'boot')?.attrs.order).toBe('1');
    const root = disks.find((d) => d.attrs.device === 'disk')!;
    expect(child(root, 'boot')?.attrs.order).toBe('2');
    // Nothing was made for the CD-ROM: only the blank disk's volume.
    expect(await bench.hypervisor(host).volume(STORAGE_POOL, `vf-${bench.namespace}_from-cd_install`)).toBeUndefined();
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'from-cd');
    await bench.until(() => bench.vm('from-cd') === undefined, 30_000, 'from-cd gone');
    expect(await bench.hypervisor(host).volume(STORAGE_POOL, volume)).toMatchObject({ path: isoPath });
  });

  it('refuses an image that is not an ISO as a CD-ROM, naming the field', async () => {
    await createImage('not-iso', pool, { volume: { name: 'golden' } });
    await untilImage('not-iso', (i) => i.status?.phase === 'Ready', 'Ready');
    await bench.createVm('cd-of-qcow2', pool, {
      disks: [{ name: 'install', type: 'cdrom', source: { image: { name: 'not-iso' } } }],
    });
    const vm = await bench.untilVm(
      'cd-of-qcow2',
      (v) => condition(v, 'Provisioned')?.reason === 'ProvisioningFailed',
      'ProvisioningFailed',
    );
    expect(condition(vm, 'Provisioned')?.message).toMatch(
      /^spec\.disks\[0\] \(install\)\.source\.image\.name: VirtualMachineImage not-iso is qcow2, not an ISO 9660 image/,
    );
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'cd-of-qcow2');
  });
});
