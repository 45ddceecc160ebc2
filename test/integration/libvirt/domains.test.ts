// Domain calls of the binding against libvirt's test driver, each checked by
// what the host reports afterwards.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection, LibvirtError } from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, lifecycleEvent, uniqueName } from './fixtures.js';

describe('libvirt domains (test driver)', () => {
  let conn: LibvirtConnection;

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
  });
  afterAll(async () => {
    await conn.close();
  });

  async function defined(): Promise<{ uuid: string; name: string }> {
    const uuid = randomUUID();
    const name = uniqueName('vm');
    const dom = await conn.defineXML(domainXml({ name, uuid, memoryKiB: 262144, vcpus: 2 }), { validate: true });
    return { uuid: dom.uuid, name: dom.name };
  }

  it('defines a domain with the given UUID and finds it by UUID and by name', async () => {
    const uuid = randomUUID();
    const name = uniqueName('define');
    expect(await conn.defineXML(domainXml({ name, uuid }))).toEqual({ uuid, name, id: null });
    expect(await conn.lookupDomainByUUID(uuid)).toEqual({ uuid, name, id: null });
    expect(await conn.lookupDomainByName(name)).toEqual({ uuid, name, id: null });
    expect(await conn.domainGetState(uuid)).toEqual({
      state: 'shutoff',
      reason: 'unknown',
      stateCode: 5,
      reasonCode: 0,
    });
  });

  it('lists every domain with its state and reason', async () => {
    const a = await defined();
    const b = await defined();
    await conn.domainCreate(b.uuid);
    const list = await conn.listAllDomains();
    const byUuid = new Map(list.map((d) => [d.uuid, d]));
    expect(byUuid.get(a.uuid)).toMatchObject({ name: a.name, id: null, state: 'shutoff' });
    expect(byUuid.get(b.uuid)).toMatchObject({
      name: b.name,
      id: expect.any(Number),
      state: 'running',
      reason: 'booted',
    });
    // The test driver's own domain is there too.
    expect(list.some((d) => d.name === 'test')).toBe(true);
  });

  it('starts, suspends, resumes, reboots, shuts down and destroys, with states and reasons', async () => {
    const { uuid } = await defined();
    await conn.domainCreate(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running', reason: 'booted' });
    expect((await conn.lookupDomainByUUID(uuid)).id).toEqual(expect.any(Number));

    await conn.domainSuspend(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'paused', reason: 'user' });
    await conn.domainResume(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running', reason: 'unpaused' });

    await conn.domainReboot(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running' });

    await conn.domainShutdown(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'shutoff', reason: 'shutdown' });

    await conn.domainCreate(uuid);
    await conn.domainDestroy(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'shutoff', reason: 'destroyed' });

    await conn.domainCreate(uuid);
    await conn.domainDestroy(uuid, { graceful: true });
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    expect((await conn.lookupDomainByUUID(uuid)).id).toBeNull();
  });

  it('reports info and XML of a domain', async () => {
    const { uuid, name } = await defined();
    await conn.domainCreate(uuid);
    const info = await conn.domainGetInfo(uuid);
    expect(info).toMatchObject({ state: 'running', stateCode: 1, maxMemoryKiB: 262144, vcpus: 2 });
    expect(info.memoryKiB).toBeGreaterThan(0);
    expect(info.cpuTimeNs).toBeGreaterThanOrEqual(0);
    const xml = await conn.domainGetXMLDesc(uuid);
    expect(xml).toContain(`<uuid>${uuid}</uuid>`);
    expect(xml).toContain(`<name>${name}</name>`);
    const inactive = await conn.domainGetXMLDesc(uuid, { inactive: true, secure: true });
    expect(inactive).toContain(`<uuid>${uuid}</uuid>`);
    await conn.domainDestroy(uuid);
  });

  it('keeps a managed-save image, restores from it, and removes it', async () => {
    const { uuid } = await defined();
    await conn.domainCreate(uuid);
    await conn.domainManagedSave(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'shutoff', reason: 'saved' });
    expect(await conn.domainHasManagedSaveImage(uuid)).toBe(true);
    await conn.domainCreate(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running' });
    expect(await conn.domainHasManagedSaveImage(uuid)).toBe(false);

    await conn.domainManagedSave(uuid);
    await conn.domainManagedSaveRemove(uuid);
    expect(await conn.domainHasManagedSaveImage(uuid)).toBe(false);
  });

  it('undefines only with the managed-save flag when an image exists', async () => {
    const { uuid } = await defined();
    await conn.domainCreate(uuid);
    await conn.domainManagedSave(uuid);
    await expect(conn.domainUndefine(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_OPERATION_INVALID' });
    // (The test driver takes no NVRAM flags: it has no firmware files.)
    await conn.domainUndefine(uuid, { managedSave: true, snapshotsMetadata: true });
    await expect(conn.lookupDomainByUUID(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
  });

  it('turns libvirt failures into LibvirtErrors with code, domain and message', async () => {
    const missing = randomUUID();
    const error = await conn.lookupDomainByUUID(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LibvirtError);
    expect(error).toMatchObject({
      name: 'LibvirtError',
      code: 42,
      codeName: 'VIR_ERR_NO_DOMAIN',
      domainName: 'VIR_FROM_TEST',
      level: 2,
    });
    expect((error as LibvirtError).message).toMatch(/not found/i);

    for (const call of [
      conn.domainCreate(missing),
      conn.domainGetState(missing),
      conn.domainDestroy(missing),
      conn.domainUndefine(missing),
      conn.lookupDomainByName(uniqueName('nope')),
    ]) {
      await expect(call).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
    }

    await expect(conn.lookupDomainByUUID('not-a-uuid')).rejects.toMatchObject({ codeName: 'VIR_ERR_INVALID_ARG' });
    await expect(conn.defineXML('<domain')).rejects.toMatchObject({ codeName: 'VIR_ERR_XML_DETAIL' });

    const { uuid } = await defined();
    // Suspending a stopped domain, starting a running one: the test driver
    // reports both as internal errors (QEMU's as VIR_ERR_OPERATION_INVALID).
    const wrongState = { name: 'LibvirtError', codeName: 'VIR_ERR_INTERNAL_ERROR', domainName: 'VIR_FROM_TEST' };
    await expect(conn.domainSuspend(uuid)).rejects.toMatchObject(wrongState);
    await conn.domainCreate(uuid);
    await expect(conn.domainCreate(uuid)).rejects.toMatchObject(wrongState);
    await conn.domainDestroy(uuid);
  });

  it('redefines a domain under the same UUID instead of making a second one', async () => {
    const uuid = randomUUID();
    const name = uniqueName('redefine');
    const added = lifecycleEvent(conn, uuid, 'defined');
    await conn.defineXML(domainXml({ name, uuid }));
    expect(await added).toMatchObject({ detail: 'added' });
    const changed = lifecycleEvent(conn, uuid, 'defined');
    await conn.defineXML(domainXml({ name, uuid, memoryKiB: 524288 }));
    expect(await changed).toMatchObject({ event: 'defined', detail: 'updated' });
    expect((await conn.domainGetInfo(uuid)).maxMemoryKiB).toBe(524288);
    expect((await conn.listAllDomains()).filter((d) => d.uuid === uuid)).toHaveLength(1);
  });
});
