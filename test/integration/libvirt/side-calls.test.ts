// Start and stop, snapshot create and revert run beside the connection's queue (native/side-thread.h).
// What callers rely on stays: the calls on one domain run in the order they were
// made, and close() runs after the calls made before it. (That other calls do
// not wait for a start is shown on real hosts: test/e2e/libvirt/side-calls-rig.)
// The thread that takes a side job runs it itself; another pool thread is
// started only when a call waits meanwhile, and the pool goes back to one.
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, el, recorder, serialize, testHost, uniqueName } from './fixtures.js';

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

  it('keeps the calls on one domain in order around its snapshot creates and reverts (side jobs too), made without waiting', async () => {
    const conn = await LibvirtConnection.open(host.uri);
    const uuid = randomUUID();
    const snapshot = (name: string) => serialize(el('domainsnapshot', {}, el('name', {}, name)));
    await conn.defineXML(domainXml({ name: uniqueName('side-snap'), uuid }));
    await conn.domainCreate(uuid);
    const { order, note } = recorder();
    const calls = [
      note('snapshot a', conn.domainSnapshotCreateXML(uuid, snapshot('a'))),
      note('list 1', conn.domainSnapshotListNames(uuid)),
      note('suspend', conn.domainSuspend(uuid)),
      note('snapshot b', conn.domainSnapshotCreateXML(uuid, snapshot('b'))),
      note('current 1', conn.domainSnapshotCurrent(uuid)),
      note('revert to a', conn.domainSnapshotRevert(uuid, 'a')),
      note('current 2', conn.domainSnapshotCurrent(uuid)),
      note('state', conn.domainGetState(uuid)),
    ];
    const results = await Promise.all(calls);
    expect(order).toEqual([
      'snapshot a',
      'list 1',
      'suspend',
      'snapshot b',
      'current 1',
      'revert to a',
      'current 2',
      'state',
    ]);
    expect(results[1]).toEqual(['a']);
    expect(results[4]).toBe('b');
    expect(results[6]).toBe('a');
    // Reverted to a snapshot of the running domain: running again.
    expect(results[7]).toMatchObject({ state: 'running' });
    await conn.domainDestroy(uuid);
    await conn.domainUndefine(uuid, { snapshotsMetadata: true });
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

  const threadCount = (): number => readdirSync('/proc/self/task').length;

  /** The thread count once it is `expected`, else the last one seen within 10 s (a retiring thread takes a moment to end). */
  async function settledThreadCount(expected: number): Promise<number> {
    const deadline = Date.now() + 10_000;
    let seen = threadCount();
    while (seen !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen = threadCount();
    }
    return seen;
  }

  it('runs starts and stops awaited one by one on the connection’s one thread, starting no other', async () => {
    const before = threadCount();
    const conn = await LibvirtConnection.open(host.uri);
    expect(threadCount()).toBe(before + 1);
    for (let i = 0; i < 20; i++) {
      const uuid = randomUUID();
      await conn.defineXML(domainXml({ name: uniqueName('side-seq'), uuid }));
      await conn.domainCreate(uuid);
      await conn.domainDestroy(uuid);
      await conn.domainUndefine(uuid);
      // A thread started for a side job would still be ending here, or gone with its result late.
      expect(threadCount()).toBe(before + 1);
    }
    await conn.close();
    // The worker ends just after close() resolves: its exit is not awaited (the clean-clone run saw it).
    expect(await settledThreadCount(before)).toBe(before);
  });

  it('takes more threads for a burst of starts with calls queued behind them, and goes back to one', async () => {
    const before = threadCount();
    const conn = await LibvirtConnection.open(host.uri);
    const uuids = Array.from({ length: 30 }, () => randomUUID());
    await Promise.all(uuids.map((uuid) => conn.defineXML(domainXml({ name: uniqueName('side-burst'), uuid }))));
    const states = await Promise.all(
      uuids.map((uuid) => conn.domainCreate(uuid).then(() => conn.domainGetState(uuid))),
    );
    expect(states.every((s) => s.state === 'running')).toBe(true);
    await Promise.all(uuids.map((uuid) => conn.domainDestroy(uuid).then(() => conn.domainUndefine(uuid))));
    expect(await settledThreadCount(before + 1)).toBe(before + 1);
    await conn.close();
    expect(await settledThreadCount(before)).toBe(before);
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
