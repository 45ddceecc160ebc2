// Storage pools and volumes through the binding, against libvirt's test
// driver: a directory pool defined from XML, built, started, refreshed,
// stopped and removed; volumes created, cloned, looked up, inspected and
// deleted. The test driver has no streams: upload and download reject with
// VIR_ERR_NO_SUPPORT there (the real rig moves data: test/e2e/libvirt/).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { el, serialize, uniqueName } from './fixtures.js';

const MiB = 1024 * 1024;

function poolXml(name: string, path: string): string {
  return serialize(el('pool', { type: 'dir' }, el('name', {}, name), el('target', {}, el('path', {}, path))));
}

function volXml(name: string, capacityMiB: number, format: string): string {
  return serialize(
    el(
      'volume',
      {},
      el('name', {}, name),
      el('capacity', { unit: 'MiB' }, capacityMiB),
      el('target', {}, el('format', { type: format })),
    ),
  );
}

describe('libvirt storage pools and volumes (test driver)', () => {
  let conn: LibvirtConnection;
  let dir: string;
  const pool = uniqueName('pool');
  let poolPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfleet-storage-'));
    poolPath = join(dir, 'pool');
    conn = await LibvirtConnection.open('test:///default');
  });
  afterAll(async () => {
    await conn.storagePoolDestroy(pool).catch(() => undefined);
    await conn.storagePoolUndefine(pool).catch(() => undefined);
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('defines, builds and starts a directory pool, lists it, reports its info and XML, refreshes it', async () => {
    const defined = await conn.storagePoolDefineXML(poolXml(pool, poolPath));
    expect(defined).toEqual({ name: pool, uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(await conn.lookupStoragePoolByName(pool)).toEqual(defined);
    expect((await conn.listStoragePools()).find((p) => p.name === pool)).toEqual({
      ...defined,
      active: false,
      persistent: true,
      autostart: false,
    });
    expect(await conn.storagePoolGetInfo(pool)).toMatchObject({ state: 'inactive', stateCode: 0 });

    await conn.storagePoolBuild(pool);
    await conn.storagePoolCreate(pool);
    const info = await conn.storagePoolGetInfo(pool);
    expect(info).toMatchObject({ state: 'running', stateCode: 2 });
    expect(info.capacity).toBeGreaterThan(0);
    expect(info.available).toBeLessThanOrEqual(info.capacity);
    expect((await conn.listStoragePools()).find((p) => p.name === pool)).toMatchObject({ active: true });

    await conn.storagePoolSetAutostart(pool, true);
    expect((await conn.listStoragePools()).find((p) => p.name === pool)).toMatchObject({ autostart: true });
    await conn.storagePoolSetAutostart(pool, false);

    const xml = await conn.storagePoolGetXMLDesc(pool);
    expect(xml).toContain(`<name>${pool}</name>`);
    expect(xml).toContain(`<path>${poolPath}</path>`);
    await conn.storagePoolRefresh(pool);
    expect(await conn.storagePoolListVolumes(pool)).toEqual([]);
  });

  it('creates volumes from XML with name, capacity and format, and finds them by key, name and path', async () => {
    const vol = await conn.storageVolCreateXML(pool, volXml('disk-a.qcow2', 10, 'qcow2'));
    expect(vol).toEqual({ name: 'disk-a.qcow2', key: expect.any(String), path: join(poolPath, 'disk-a.qcow2') });
    expect(await conn.storageVolGetInfo(vol.key)).toEqual({
      type: 'file',
      typeCode: 0,
      capacity: 10 * MiB,
      allocation: expect.any(Number),
    });
    expect(await conn.storageVolGetPath(vol.key)).toBe(vol.path);
    expect(await conn.lookupStorageVolByKey(vol.key)).toEqual(vol);
    expect(await conn.lookupStorageVolByName(pool, 'disk-a.qcow2')).toEqual(vol);
    expect(await conn.lookupStorageVolByPath(vol.path)).toEqual(vol);
    const xml = await conn.storageVolGetXMLDesc(vol.key);
    expect(xml).toContain('<name>disk-a.qcow2</name>');
    expect(xml).toContain("<format type='qcow2'/>");
    expect(await conn.storagePoolListVolumes(pool)).toEqual([vol]);
  });

  it('clones a volume and deletes volumes', async () => {
    const source = await conn.lookupStorageVolByName(pool, 'disk-a.qcow2');
    const clone = await conn.storageVolCreateXMLFrom(pool, volXml('disk-b.qcow2', 10, 'qcow2'), source.key);
    expect(clone).toMatchObject({ name: 'disk-b.qcow2', path: join(poolPath, 'disk-b.qcow2') });
    expect((await conn.storageVolGetInfo(clone.key)).capacity).toBe(10 * MiB);
    expect((await conn.storagePoolListVolumes(pool)).map((v) => v.name).sort()).toEqual([
      'disk-a.qcow2',
      'disk-b.qcow2',
    ]);

    await conn.storageVolDelete(clone.key);
    await expect(conn.lookupStorageVolByKey(clone.key)).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_STORAGE_VOL',
      domainName: 'VIR_FROM_TEST',
    });
    await expect(conn.storageVolDelete(clone.key)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_STORAGE_VOL' });
    expect((await conn.storagePoolListVolumes(pool)).map((v) => v.name)).toEqual(['disk-a.qcow2']);
  });

  it('rejects upload and download with VIR_ERR_NO_SUPPORT, from a Buffer and from a file', async () => {
    const vol = await conn.lookupStorageVolByName(pool, 'disk-a.qcow2');
    await expect(conn.storageVolUpload(vol.key, Buffer.from('hello'))).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
      code: 3,
    });
    const file = join(dir, 'image.raw');
    writeFileSync(file, Buffer.alloc(4096, 7));
    await expect(conn.storageVolUpload(vol.key, file)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(conn.storageVolDownload(vol.key)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(conn.storageVolDownload(vol.key, { file: join(dir, 'out.raw') })).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
    });
    // A missing source file is reported before libvirt is asked.
    await expect(conn.storageVolUpload(vol.key, join(dir, 'missing.raw'))).rejects.toMatchObject({
      codeName: 'VIR_ERR_SYSTEM_ERROR',
      message: expect.stringContaining('No such file'),
    });
    // The connection still answers after the side threads have run.
    expect((await conn.storageVolGetInfo(vol.key)).type).toBe('file');
  });

  it('rejects resize with VIR_ERR_NO_SUPPORT (the test driver has none)', async () => {
    const vol = await conn.lookupStorageVolByName(pool, 'disk-a.qcow2');
    await expect(conn.storageVolResize(vol.key, 20 * MiB)).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
      domainName: 'VIR_FROM_STORAGE',
    });
  });

  it('rejects unknown pools and volumes, and bad arguments', async () => {
    await expect(conn.storagePoolGetInfo(uniqueName('nopool'))).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_STORAGE_POOL',
      code: 49,
    });
    await expect(conn.storageVolGetInfo('/no/such/volume')).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_STORAGE_VOL',
      code: 50,
    });
    await expect(conn.storageVolCreateXML(pool, '<volume>')).rejects.toMatchObject({ codeName: 'VIR_ERR_XML_DETAIL' });
    await expect(conn.storagePoolDefineXML('<pool type="nosuch"><name>x</name></pool>')).rejects.toMatchObject({
      codeName: 'VIR_ERR_XML_ERROR',
    });
    const vol = await conn.lookupStorageVolByName(pool, 'disk-a.qcow2');
    await expect(conn.storageVolUpload(vol.key, 42 as unknown as Buffer)).rejects.toMatchObject({ name: 'TypeError' });
    await expect(conn.storageVolUpload(vol.key, Buffer.from('x'), { offset: -1 })).rejects.toMatchObject({
      name: 'RangeError',
    });
  });

  it('stops, deletes and undefines the pool', async () => {
    await conn.storagePoolDestroy(pool);
    expect(await conn.storagePoolGetInfo(pool)).toMatchObject({ state: 'inactive' });
    await conn.storagePoolDelete(pool);
    await conn.storagePoolUndefine(pool);
    await expect(conn.lookupStoragePoolByName(pool)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_STORAGE_POOL' });
    expect((await conn.listStoragePools()).map((p) => p.name)).not.toContain(pool);
  });
});
