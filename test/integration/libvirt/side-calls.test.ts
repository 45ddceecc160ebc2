// Start and stop run beside the connection's worker thread (native/side-thread.h).
// What callers rely on stays: the calls on one domain run in the order they were
// made, and close() runs after the calls made before it. (That other calls do
// not wait for a start is shown on real hosts: test/e2e/libvirt/side-calls-rig.)
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, recorder, testHost, uniqueName } from './fixtures.js';

describe('libvirt binding: start and stop beside the worker (test driver)', () => {
  const host = testHost({
    cpus: { sockets: 1, cores: 2, threads: 1, mhz: 2000, model: 'side' },
    memoryKiB: 4 * 1024 * 1024,
  });
  afterAll(() => host.cleanup());

  it('keeps the calls on one domain in order around its starts and stops, made without waiting', async () => {
    const conn = await LibvirtConnection.open(host.uri);
    const uuid = randomUUID();
    const { order, note } = recorder();
    const calls = [
      note('define', conn.defineXML(domainXml({ name: uniqueName('side-order'), uuid }))),
      note('create', conn.domainCreate(uuid)),
      note('state 1', conn.domainGetState(uuid)),
      note('destroy', conn.domainDestroy(uuid, { graceful: true })),
      note('state 2', conn.domainGetState(uuid)),
      note('create again', conn.domainCreate(uuid)),
      note('shutdown', conn.domainShutdown(uuid)),
      note('state 3', conn.domainGetState(uuid)),
      note('undefine', conn.domainUndefine(uuid)),
    ];
    const missing = conn.lookupDomainByUUID(uuid).then(
      () => undefined,
      (error: unknown) => error,
    );
    const results = await Promise.all(calls);

    expect(order).toEqual([
      'define',
      'create',
      'state 1',
      'destroy',
      'state 2',
      'create again',
      'shutdown',
      'state 3',
      'undefine',
    ]);
    expect(results[2]).toMatchObject({ state: 'running', reason: 'booted' });
    expect(results[4]).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    expect(results[7]).toMatchObject({ state: 'shutoff', reason: 'shutdown' });
    expect(await missing).toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
    await conn.close();
  });

  it('closes after a start made just before close(), and refuses one made after it', async () => {
    const conn = await LibvirtConnection.open(host.uri);
    const uuid = randomUUID();
    await conn.defineXML(domainXml({ name: uniqueName('side-close'), uuid }));
    const { order, note } = recorder();
    const created = note('create', conn.domainCreate(uuid));
    const closed = note('close', conn.close());
    const late = conn.domainCreate(uuid).then(
      () => undefined,
      (error: unknown) => error,
    );
    await Promise.all([created, closed]);
    expect(order).toEqual(['create', 'close']);
    expect(await late).toMatchObject({ codeName: 'VIR_ERR_INVALID_CONN', message: 'connection is closed' });
  });

  it('rejects start and stop of a missing domain with libvirt’s error, as other calls do', async () => {
    const conn = await LibvirtConnection.open(host.uri);
    const uuid = randomUUID();
    const expected = { name: 'LibvirtError', codeName: 'VIR_ERR_NO_DOMAIN', domainName: 'VIR_FROM_TEST' };
    for (const call of [
      conn.domainCreate(uuid),
      conn.domainDestroy(uuid),
      conn.domainShutdown(uuid),
      conn.domainGetState(uuid),
    ]) {
      await expect(call).rejects.toMatchObject(expected);
    }
    await conn.close();
  });
});
