// Long domain calls (start, stop) run beside the connection's worker thread
// (src/hypervisors/libvirt/native/side-thread.h), on real libvirtd + QEMU
// hosts: other calls on the same connection answer while QEMU starts, calls
// on the same domain keep their order, and errors are libvirt's as before.
// Needs root (test/rig).
import { describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { recorder } from '../../integration/libvirt/fixtures.js';
import { guestOnRig } from '../../rig/guest.js';
import { closeEvent } from '../../rig/waiters.js';
import { rigConnection } from './rig-connection.js';

describe('long domain calls on real libvirtd + QEMU hosts', () => {
  const on = rigConnection();

  it('answers calls made while a domainCreate runs before it, and runs a later call on that domain after it', async () => {
    const [starting, other] = await Promise.all([
      guestOnRig(on.rig, 'side-starting'),
      guestOnRig(on.rig, 'side-other'),
    ]);
    await on.conn.defineXML(starting.xml);
    await on.conn.defineXML(other.xml);

    // Made in this order without waiting: with one FIFO per connection every
    // call after the create would settle after it (QEMU takes ~0.3-2 s to
    // start under TCG; these calls take milliseconds). Sharing libvirt's
    // connection with the create, the calls made back to back would often
    // wait for it too (native/session.h).
    const { order, note } = recorder();
    const calls = [
      note('create', on.conn.domainCreate(starting.uuid)),
      note('getLibVersion', on.conn.getLibVersion()),
      note('lookup other', on.conn.lookupDomainByUUID(other.uuid)),
      note('state other', on.conn.domainGetState(other.uuid)),
      note('xml other', on.conn.domainGetXMLDesc(other.uuid)),
      note('listAllDomains', on.conn.listAllDomains()),
      // The same domain: waits for the create, as before.
      note('state starting', on.conn.domainGetState(starting.uuid)),
    ];
    const results = await Promise.all(calls);

    expect(order.slice(-2)).toEqual(['create', 'state starting']);
    expect(new Set(order.slice(0, -2))).toEqual(
      new Set(['getLibVersion', 'lookup other', 'state other', 'xml other', 'listAllDomains']),
    );
    expect(results[3]).toMatchObject({ state: 'shutoff' });
    expect(results[6]).toMatchObject({ state: 'running', reason: 'booted' });

    // A stop, too, keeps its domain's calls in order and leaves the others free.
    const stop = recorder();
    const stopped = await Promise.all([
      stop.note('destroy', on.conn.domainDestroy(starting.uuid)),
      stop.note('state after destroy', on.conn.domainGetState(starting.uuid)),
      stop.note('undefine', on.conn.domainUndefine(starting.uuid)),
    ]);
    expect(stop.order).toEqual(['destroy', 'state after destroy', 'undefine']);
    expect(stopped[1]).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    await on.conn.domainUndefine(other.uuid);
  }, 120_000);

  it('starts, shuts down and destroys several domains of one host at once', async () => {
    const guests = await Promise.all([0, 1, 2].map((i) => guestOnRig(on.rig, `side-many-${i}`)));
    for (const guest of guests) await on.conn.defineXML(guest.xml);
    await Promise.all(guests.map((g) => on.conn.domainCreate(g.uuid)));
    for (const state of await Promise.all(guests.map((g) => on.conn.domainGetState(g.uuid)))) {
      expect(state).toMatchObject({ state: 'running' });
    }
    // The guest's definition has no ACPI: a shutdown request is accepted and
    // changes nothing, so the destroys below find them all running.
    await Promise.all(guests.map((g) => on.conn.domainShutdown(g.uuid)));
    await Promise.all([
      on.conn.domainDestroy(guests[0]!.uuid, { graceful: true }),
      on.conn.domainDestroy(guests[1]!.uuid),
      on.conn.domainDestroy(guests[2]!.uuid),
    ]);
    for (const state of await Promise.all(guests.map((g) => on.conn.domainGetState(g.uuid)))) {
      expect(state).toMatchObject({ state: 'shutoff', reason: 'destroyed' });
    }
    for (const guest of guests) await on.conn.domainUndefine(guest.uuid);
  }, 120_000);

  it('rejects as before: starting a running domain, stopping a stopped one, a missing one', async () => {
    const guest = await guestOnRig(on.rig, 'side-errors');
    await on.conn.defineXML(guest.xml);
    const notRunning = {
      code: 55,
      codeName: 'VIR_ERR_OPERATION_INVALID',
      message: 'Requested operation is not valid: domain is not running',
    };
    // (libvirt 9.0 reports these from different places: hence two domains.)
    await expect(on.conn.domainDestroy(guest.uuid)).rejects.toMatchObject({
      ...notRunning,
      domainName: 'VIR_FROM_DOMAIN',
    });
    await expect(on.conn.domainDestroy(guest.uuid, { graceful: true })).rejects.toMatchObject({
      ...notRunning,
      domainName: 'VIR_FROM_DOMAIN',
    });
    await expect(on.conn.domainShutdown(guest.uuid)).rejects.toMatchObject({
      ...notRunning,
      domainName: 'VIR_FROM_QEMU',
    });
    await on.conn.domainCreate(guest.uuid);
    await expect(on.conn.domainCreate(guest.uuid)).rejects.toMatchObject({
      name: 'LibvirtError',
      code: 55,
      codeName: 'VIR_ERR_OPERATION_INVALID',
      domainName: 'VIR_FROM_QEMU',
      message: 'Requested operation is not valid: domain is already running',
    });
    await on.conn.domainDestroy(guest.uuid);
    await on.conn.domainUndefine(guest.uuid);
    const missing = {
      code: 42,
      codeName: 'VIR_ERR_NO_DOMAIN',
      domainName: 'VIR_FROM_QEMU',
      message: `Domain not found: no domain with matching uuid '${guest.uuid}'`,
    };
    await expect(on.conn.domainCreate(guest.uuid)).rejects.toMatchObject(missing);
    await expect(on.conn.domainShutdown(guest.uuid)).rejects.toMatchObject(missing);
    await expect(on.conn.domainDestroy(guest.uuid, { graceful: true })).rejects.toMatchObject(missing);
  }, 120_000);

  // A start needs a connection of its own, and opening one to a host that
  // stopped answering never returns: the start must still end with the
  // connection, as a call on it does.
  it('ends a start on a host that froze when keepalive closes the connection, with libvirt’s error', async () => {
    const host = on.rig.hosts[0]!;
    const fresh = await LibvirtConnection.open(host.uri);
    expect(await fresh.setKeepAlive(1, 2)).toBe(true);
    const guest = await guestOnRig(on.rig, 'side-frozen');
    await fresh.defineXML(guest.xml);
    const closed = closeEvent(fresh, 10_000);
    host.freeze();
    try {
      const start = fresh.domainCreate(guest.uuid).then(
        () => 'started',
        (error: unknown) => error,
      );
      expect((await closed).reason).toBe('keepalive');
      expect(await start).toMatchObject({
        name: 'LibvirtError',
        codeName: 'VIR_ERR_INTERNAL_ERROR',
        domainName: 'VIR_FROM_RPC',
      });
    } finally {
      host.thaw();
    }
    await fresh.close();
    await on.conn.domainUndefine(guest.uuid);
  }, 60_000);
});
