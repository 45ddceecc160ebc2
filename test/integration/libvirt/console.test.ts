// Console streams through the binding. libvirt's test driver has no
// consoles: virDomainOpenConsole rejects with VIR_ERR_NO_SUPPORT there, and
// nothing is left open behind the failed call. (A real guest's serial
// console is read on the rig: test/e2e/libvirt/storage-console-rig.test.ts.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, uniqueName } from './fixtures.js';

describe('libvirt console streams (test driver)', () => {
  let conn: LibvirtConnection;
  const uuid = randomUUID();

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
    await conn.defineXML(domainXml({ name: uniqueName('console'), uuid }));
    await conn.domainCreate(uuid);
  });
  afterAll(async () => {
    await conn.domainDestroy(uuid).catch(() => undefined);
    await conn.domainUndefine(uuid).catch(() => undefined);
    await conn.close();
  });

  it('rejects opening a console with VIR_ERR_NO_SUPPORT', async () => {
    await expect(conn.domainOpenConsole(uuid)).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
      code: 3,
      domainName: 'VIR_FROM_DOMAIN',
      message: expect.stringContaining('virDomainOpenConsole'),
    });
    await expect(conn.domainOpenConsole(uuid, { devName: 'serial0', force: true, safe: true })).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
    });
    // The connection carries on.
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running' });
  });

  it('rejects an unknown domain with VIR_ERR_NO_DOMAIN before opening a stream', async () => {
    await expect(conn.domainOpenConsole(randomUUID())).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
  });

  it('rejects bad arguments with a TypeError', async () => {
    await expect(conn.domainOpenConsole(uuid, { force: 'yes' as unknown as boolean })).rejects.toMatchObject({
      name: 'TypeError',
    });
    await expect(conn.domainOpenConsole(42 as unknown as string)).rejects.toMatchObject({ name: 'TypeError' });
  });

  it('opens and fails many times without leaking streams or callbacks', async () => {
    for (let i = 0; i < 200; i++) {
      await expect(conn.domainOpenConsole(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    }
    expect(await conn.isAlive()).toBe(true);
  });
});
