// Hypervisor snapshots (internal, with and without memory), revert, delete, and managed save,
// against a test-driver host of this file's own.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildDomainXml } from '../../../src/hypervisors/domain-xml.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { kvmInput } from '../../unit/domain-xml-matrix.js';
import { testHosts, type TestHosts } from './test-hosts.js';

describe('LibvirtHypervisor snapshots and managed save (test driver)', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let hypervisor: LibvirtHypervisor;

  beforeAll(() => {
    hosts = testHosts();
    pool = new LibvirtConnectionPool({ reconnect: { initialMs: 1, maxMs: 4 } });
    hypervisor = new LibvirtHypervisor(pool, hosts.host('snapshots'));
  });
  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  async function defined(): Promise<string> {
    const uid = randomUUID();
    const { xml, uuid } = buildDomainXml(kvmInput({ uid, name: `vm-${uid.slice(0, 8)}` }, { networks: [] }));
    await hypervisor.ensureDefined(xml);
    return uuid;
  }

  it('takes a memory snapshot of a running domain, lists it, reverts to it and deletes it', async () => {
    const uuid = await defined();
    await hypervisor.start(uuid);
    const before = Date.now();
    const taken = await hypervisor.createSnapshot(uuid, {
      name: 'first',
      description: 'a <test> & more',
      memory: true,
    });
    expect(taken).toMatchObject({
      name: 'first',
      description: 'a <test> & more',
      memory: true,
      domainState: 'running',
      parent: null,
    });
    expect(taken.createdAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    const second = await hypervisor.createSnapshot(uuid, { name: 'second', memory: true });
    expect(second.parent).toBe('first');
    expect((await hypervisor.listSnapshots(uuid)).map((s) => s.name)).toEqual(['first', 'second']);

    // Taken again under the same name: refused, naming it.
    await expect(hypervisor.createSnapshot(uuid, { name: 'first', memory: true })).rejects.toMatchObject({
      kind: 'already-exists',
      message: expect.stringContaining('snapshot first'),
    });

    // Reverting a stopped domain to a running snapshot runs it again; 'paused' leaves it paused.
    await hypervisor.destroy(uuid);
    await hypervisor.revertSnapshot(uuid, 'first');
    expect((await hypervisor.state(uuid)).state).toBe('running');
    await hypervisor.revertSnapshot(uuid, 'second', { state: 'paused' });
    expect((await hypervisor.state(uuid)).state).toBe('paused');

    expect(await hypervisor.deleteSnapshot(uuid, 'second')).toBe(true);
    expect(await hypervisor.deleteSnapshot(uuid, 'second')).toBe(false);
    expect(await hypervisor.snapshot(uuid, 'second')).toBeUndefined();
    expect(await hypervisor.snapshot(uuid, 'first')).toMatchObject({ name: 'first', memory: true });
    await expect(hypervisor.revertSnapshot(uuid, 'second')).rejects.toMatchObject({ kind: 'not-found' });

    await hypervisor.destroy(uuid);
    await hypervisor.undefine(uuid); // snapshot metadata goes with it
  });

  it('takes a disk-only snapshot of a stopped domain, and revert keeps it stopped', async () => {
    const uuid = await defined();
    const taken = await hypervisor.createSnapshot(uuid, { name: 'cold', memory: false });
    expect(taken).toMatchObject({ name: 'cold', memory: false, domainState: 'shutoff' });
    await hypervisor.revertSnapshot(uuid, 'cold');
    expect((await hypervisor.state(uuid)).state).toBe('shutoff');
    await hypervisor.undefine(uuid);
  });

  it('refuses a snapshot name outside the safe alphabet before it reaches the host', async () => {
    const uuid = await defined();
    await expect(hypervisor.createSnapshot(uuid, { name: '../x', memory: false })).rejects.toMatchObject({
      kind: 'invalid-definition',
      message: expect.stringContaining('snapshot name "../x"'),
    });
    expect(await hypervisor.listSnapshots(uuid)).toEqual([]);
    await hypervisor.undefine(uuid);
  });

  it('managed save stops the domain keeping its memory image; start resumes from it, or removal discards it', async () => {
    const uuid = await defined();
    await hypervisor.start(uuid);
    expect(await hypervisor.hasManagedSave(uuid)).toBe(false);
    await hypervisor.managedSave(uuid);
    expect(await hypervisor.state(uuid)).toMatchObject({ state: 'shutoff', id: null });
    expect(await hypervisor.hasManagedSave(uuid)).toBe(true);
    // The start consumes the image (the test driver reports the reason as 'booted', QEMU 'restored').
    await hypervisor.start(uuid);
    expect((await hypervisor.state(uuid)).state).toBe('running');
    expect(await hypervisor.hasManagedSave(uuid)).toBe(false);

    await hypervisor.managedSave(uuid);
    await hypervisor.removeManagedSave(uuid);
    expect(await hypervisor.hasManagedSave(uuid)).toBe(false);
    await hypervisor.start(uuid);
    expect((await hypervisor.state(uuid)).state).toBe('running');
    await hypervisor.destroy(uuid);
    await hypervisor.undefine(uuid);
  });

  it('managed save of a stopped domain is invalid-state', async () => {
    const uuid = await defined();
    await expect(hypervisor.managedSave(uuid)).rejects.toMatchObject({ kind: 'invalid-state' });
    await hypervisor.undefine(uuid);
  });
});
