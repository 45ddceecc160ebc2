// Domain lifecycle events reach JavaScript, with names for event and detail.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  LibvirtConnection,
  type DomainEvent,
  type LifecycleEvent,
} from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, lifecycleEvent, testHost, uniqueName } from './fixtures.js';

describe('libvirt domain events (test driver)', () => {
  let conn: LibvirtConnection;

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
  });
  afterAll(async () => {
    await conn.close();
  });

  it('reports define, start, suspend, resume, stop and undefine, in order, with details', async () => {
    const uuid = randomUUID();
    const name = uniqueName('events');
    const seen: LifecycleEvent[] = [];
    let undefinedSeen: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      undefinedSeen = resolve;
    });
    const off = conn.onDomainEvent((event) => {
      if (event.type !== 'lifecycle' || event.domain.uuid !== uuid) return;
      seen.push(event);
      if (event.event === 'undefined') undefinedSeen();
    });

    await conn.defineXML(domainXml({ name, uuid }));
    await conn.domainCreate(uuid);
    await conn.domainSuspend(uuid);
    await conn.domainResume(uuid);
    await conn.domainDestroy(uuid);
    await conn.domainCreate(uuid);
    await conn.domainShutdown(uuid);
    await conn.domainUndefine(uuid);
    await done;
    off();

    expect(seen.map((e) => `${e.event}/${e.detail}`)).toEqual([
      'defined/added',
      'started/booted',
      'suspended/paused',
      'resumed/unpaused',
      'stopped/destroyed',
      'started/booted',
      'stopped/shutdown',
      'undefined/removed',
    ]);
    expect(seen[0]).toEqual({
      type: 'lifecycle',
      domain: { uuid, name, id: null },
      event: 'defined',
      detail: 'added',
      eventCode: 0,
      detailCode: 0,
    });
    expect(seen[1]!.domain.id).toEqual(expect.any(Number));
  });

  it('reports a managed save as stopped/saved', async () => {
    const uuid = randomUUID();
    await conn.defineXML(domainXml({ name: uniqueName('saved'), uuid }));
    await conn.domainCreate(uuid);
    const stopped = lifecycleEvent(conn, uuid, 'stopped');
    await conn.domainManagedSave(uuid);
    expect(await stopped).toMatchObject({ event: 'stopped', detail: 'saved' });
  });

  it('stops delivering to a listener once it unsubscribes', async () => {
    const uuid = randomUUID();
    const early: DomainEvent[] = [];
    const off = conn.onDomainEvent((e) => early.push(e));
    const added = lifecycleEvent(conn, uuid, 'defined');
    await conn.defineXML(domainXml({ name: uniqueName('unsub'), uuid }));
    await added;
    off();
    const started = lifecycleEvent(conn, uuid, 'started');
    await conn.domainCreate(uuid);
    await started;
    expect(
      early.filter((e) => e.type === 'lifecycle' && e.domain.uuid === uuid).map((e) => (e as LifecycleEvent).event),
    ).toEqual(['defined']);
  });

  it('keeps each connection to its own events', async () => {
    // Every test:///default connection in a process shares one simulated
    // host; each opening of a definition file makes a host of its own, and
    // only its connection hears about it.
    const host = testHost({
      cpus: { sockets: 1, cores: 2, threads: 1, mhz: 1000, model: 'events' },
      memoryKiB: 4 * 1024 * 1024,
    });
    const a = await LibvirtConnection.open(host.uri);
    const b = await LibvirtConnection.open(host.uri);
    try {
      const heardByB: DomainEvent[] = [];
      b.onDomainEvent((e) => heardByB.push(e));
      const uuid = randomUUID();
      const added = lifecycleEvent(a, uuid, 'defined');
      await a.defineXML(domainXml({ name: uniqueName('private'), uuid }));
      await added;
      await expect(b.lookupDomainByUUID(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
      // An event of b's own after a's: whatever b would have heard of a's
      // domain was emitted on libvirt's one event thread before it.
      const bUuid = randomUUID();
      const bAdded = lifecycleEvent(b, bUuid, 'defined');
      await b.defineXML(domainXml({ name: uniqueName('other'), uuid: bUuid }));
      await bAdded;
      expect(heardByB.map((e) => e.domain.uuid)).toEqual([bUuid]);
    } finally {
      await a.close();
      await b.close();
      host.cleanup();
    }
  });
});
