// The binding's later calls (statistics of all domains, interface addresses,
// migration, jobs, guest agent) on libvirt's test driver: what it supports
// works, what it lacks rejects with libvirt's code, bad arguments reject with
// a TypeError before reaching libvirt. (Real migration, jobs and abort:
// rig.test.ts.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection, type MigrateOptions } from '../../../src/hypervisors/libvirt/native/index.js';
import { el, serialize } from '../../rig/domain-xml.js';

function domainXml(name: string, uuid: string, mac: string): string {
  return serialize(
    el(
      'domain',
      { type: 'test' },
      el('name', {}, name),
      el('uuid', {}, uuid),
      el('memory', { unit: 'KiB' }, 131072),
      el('vcpu', {}, 1),
      el('os', {}, el('type', { arch: 'x86_64' }, 'hvm')),
      el(
        'devices',
        {},
        el('interface', { type: 'network' }, el('mac', { address: mac }), el('source', { network: 'default' })),
      ),
    ),
  );
}

describe('libvirt binding: statistics, addresses, migration and agent calls (test driver)', () => {
  let conn: LibvirtConnection;
  const uuid = randomUUID();
  const name = `calls-${process.pid}`;

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
    await conn.defineXML(domainXml(name, uuid, '52:54:00:12:34:56'));
    await conn.domainCreate(uuid);
  });
  afterAll(async () => {
    await conn.domainDestroy(uuid).catch(() => undefined);
    await conn.domainUndefine(uuid).catch(() => undefined);
    await conn.close();
  });

  it('returns statistics of every domain in one call, filtered by state and group', async () => {
    const all = await conn.getAllDomainStats();
    const mine = all.find((r) => r.domain.uuid === uuid);
    expect(mine).toEqual({
      domain: { uuid, name, id: expect.any(Number) },
      stats: expect.objectContaining({ 'state.state': 1 }),
    });

    await conn.domainSuspend(uuid);
    try {
      const running = await conn.getAllDomainStats({ groups: ['state'], running: true });
      expect(running.map((r) => r.domain.uuid)).not.toContain(uuid);
      const paused = await conn.getAllDomainStats({ groups: ['state'], paused: true });
      expect(paused.find((r) => r.domain.uuid === uuid)?.stats['state.state']).toBe(3);
    } finally {
      await conn.domainResume(uuid);
    }
  }, 10_000);

  it('reports interface addresses with their type and prefix', async () => {
    const ifaces = await conn.domainInterfaceAddresses(uuid);
    expect(ifaces).toHaveLength(1);
    expect(ifaces[0]).toMatchObject({
      hwaddr: '52:54:00:12:34:56',
      addresses: [{ type: 'ipv4', address: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/), prefix: expect.any(Number) }],
    });
  }, 10_000);

  it('rejects calls the test driver lacks with libvirt codes', async () => {
    await expect(conn.domainGetJobStats(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(conn.domainAbortJob(uuid)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(conn.domainAgentCommand(uuid, '{"execute":"guest-ping"}')).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
    });
    await expect(
      conn.domainMigrate(uuid, { peerToPeer: true, destinationUri: 'test:///default', live: true }),
    ).rejects.toMatchObject({
      codeName: 'VIR_ERR_ARGUMENT_UNSUPPORTED',
    });
    await expect(
      conn.domainMigrate(randomUUID(), { peerToPeer: true, destinationUri: 'test:///default' }),
    ).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_DOMAIN',
    });
  }, 10_000);

  it('refuses bad arguments with a TypeError or RangeError before calling libvirt', async () => {
    const bad: [string, Promise<unknown>][] = [
      ['p2p without destination', conn.domainMigrate(uuid, { peerToPeer: true })],
      ['destination without p2p', conn.domainMigrate(uuid, { destinationUri: 'qemu+tcp://h/system' })],
      ['copyStorage', conn.domainMigrate(uuid, { copyStorage: 'some' } as unknown as MigrateOptions)],
      ['negative bandwidth', conn.domainMigrate(uuid, { peerToPeer: true, destinationUri: 'x', bandwidthMiBps: -1 })],
      ['fractional downtime', conn.domainMigrate(uuid, { peerToPeer: true, destinationUri: 'x', maxDowntimeMs: 1.5 })],
      ['NUL in URI', conn.domainMigrate(uuid, { peerToPeer: true, destinationUri: 'qemu+tcp://h\0/system' })],
      ['address source', conn.domainInterfaceAddresses(uuid, { source: 'dns' as 'lease' })],
      ['stats group', conn.getAllDomainStats({ groups: ['disk' as 'block'] })],
      ['agent timeout', conn.domainAgentCommand(uuid, '{}', { timeoutSeconds: -3 })],
    ];
    for (const [what, call] of bad) {
      await expect(call.catch((e: Error) => e.name)).resolves.toMatch(/^(TypeError|RangeError)$/);
      expect(what).toBeTruthy();
    }
  }, 10_000);
});
