// Hypervisor.setMemory (live balloon target) and Hypervisor.interfaceAddresses against a
// test-driver host of this file's own (a definition file with a 'default' network, which the
// test driver needs to answer address queries for NICs on it).
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildDomainXml } from '../../../src/hypervisors/domain-xml.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { child, childrenNamed, el, parseXml, serializeXml } from '../../../src/hypervisors/xml.js';
import { kvmInput, nic } from '../../unit/domain-xml-matrix.js';
import { testHosts, type TestHosts } from './test-hosts.js';

const MiB = 1024 * 1024;

/** A host with 4 CPUs, 8 GiB and an active network 'default' on 192.168.122.0/24. */
function hostWithNetwork(dir: string): string {
  const node = el(
    'node',
    {},
    el(
      'cpu',
      {},
      el('mhz', {}, '2000'),
      el('model', {}, 'x86_64'),
      el('nodes', {}, '1'),
      el('sockets', {}, '1'),
      el('cores', {}, '4'),
      el('threads', {}, '1'),
      el('active', {}, '4'),
    ),
    el('memory', {}, String(8 * 1024 * 1024)),
    el(
      'network',
      {},
      el('name', {}, 'default'),
      el('bridge', { name: 'virbr0' }),
      el('ip', { address: '192.168.122.1', netmask: '255.255.255.0' }),
    ),
  );
  const file = join(dir, 'guest-host.xml');
  writeFileSync(file, serializeXml(node));
  return `test://${file}`;
}

/** A 256 MiB domain with a NIC on the 'default' network and one on a bridge. */
function domain() {
  const uid = randomUUID();
  return buildDomainXml(
    kvmInput(
      { uid, name: `vm-${uid.slice(0, 8)}` },
      { memory: '256Mi', networks: [nic('eth0'), nic('uplink', { bridge: 'br0' })] },
    ),
  );
}

/** Current and maximum memory (KiB) as the domain's XML states them. */
function memoryOf(xml: string): { currentKiB: number; maxKiB: number } {
  const root = parseXml(xml);
  const kib = (name: string) => {
    const e = child(root, name);
    expect(e?.attrs.unit ?? 'KiB').toBe('KiB');
    return Number(e?.text);
  };
  return { currentKiB: kib('currentMemory'), maxKiB: kib('memory') };
}

/** The running domain's NICs: target device, MAC and the source they join. */
function nicsOf(xml: string): { dev: string; mac: string; network?: string; bridge?: string }[] {
  const devices = child(parseXml(xml), 'devices');
  return childrenNamed(devices!, 'interface').map((i) => ({
    dev: child(i, 'target')?.attrs.dev ?? '',
    mac: child(i, 'mac')?.attrs.address ?? '',
    ...(child(i, 'source')?.attrs.network !== undefined ? { network: child(i, 'source')!.attrs.network } : {}),
    ...(child(i, 'source')?.attrs.bridge !== undefined ? { bridge: child(i, 'source')!.attrs.bridge } : {}),
  }));
}

describe('LibvirtHypervisor setMemory and interfaceAddresses (test driver)', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let hypervisor: LibvirtHypervisor;

  beforeAll(() => {
    hosts = testHosts();
    pool = new LibvirtConnectionPool({ reconnect: { initialMs: 1, maxMs: 4 } });
    hypervisor = new LibvirtHypervisor(pool, hostWithNetwork(hosts.dir));
  });
  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  async function running() {
    const { xml, uuid } = domain();
    await hypervisor.ensureDefined(xml);
    await hypervisor.start(uuid);
    return uuid;
  }

  async function remove(uuid: string) {
    if ((await hypervisor.state(uuid)).state !== 'shutoff') await hypervisor.destroy(uuid);
    await hypervisor.undefine(uuid);
  }

  describe('setMemory', () => {
    it('changes the running domain current memory live, leaving the definition alone', async () => {
      const uuid = await running();
      expect(memoryOf(await hypervisor.xml(uuid))).toEqual({ currentKiB: 262144, maxKiB: 262144 });

      await hypervisor.setMemory(uuid, 128 * MiB);
      expect(memoryOf(await hypervisor.xml(uuid))).toEqual({ currentKiB: 131072, maxKiB: 262144 });
      // The binding's info reports the same.
      const info = await (await pool.connection(hypervisor.uri)).domainGetInfo(uuid);
      expect(info).toMatchObject({ state: 'running', memoryKiB: 131072, maxMemoryKiB: 262144 });
      // Live only: the persistent definition keeps its memory.
      expect(memoryOf(await hypervisor.xml(uuid, { inactive: true }))).toEqual({ currentKiB: 262144, maxKiB: 262144 });

      // Bytes that are not whole KiB round up; the maximum itself is allowed.
      await hypervisor.setMemory(uuid, 100 * MiB + 1);
      expect(memoryOf(await hypervisor.xml(uuid)).currentKiB).toBe(102401);
      await hypervisor.setMemory(uuid, 256 * MiB);
      expect(memoryOf(await hypervisor.xml(uuid)).currentKiB).toBe(262144);
      await remove(uuid);
    });

    it('refuses more than the running domain maximum as invalid-state, naming the maximum', async () => {
      const uuid = await running();
      await hypervisor.setMemory(uuid, 192 * MiB);
      const error = await hypervisor.setMemory(uuid, 512 * MiB).catch((e: unknown) => e);
      expect(error).toMatchObject({
        name: 'HypervisorError',
        kind: 'invalid-state',
        host: hypervisor.uri,
        operation: `set memory of domain ${uuid}`,
        cause: { codeName: 'VIR_ERR_INVALID_ARG' },
      });
      expect((error as Error).message).toContain(
        "524288 KiB is above the running domain's maximum memory of 262144 KiB",
      );
      expect((error as Error).message).toContain('started again');
      // Nothing changed.
      expect(memoryOf(await hypervisor.xml(uuid)).currentKiB).toBe(196608);
      await remove(uuid);
    });

    it('refuses a stopped domain as invalid-state', async () => {
      const { xml, uuid } = domain();
      await hypervisor.ensureDefined(xml);
      await expect(hypervisor.setMemory(uuid, 128 * MiB)).rejects.toMatchObject({
        kind: 'invalid-state',
        message: expect.stringContaining('domain is not running'),
        cause: { codeName: 'VIR_ERR_OPERATION_INVALID' },
      });
      // Above the maximum, a stopped domain is still refused for being stopped.
      await expect(hypervisor.setMemory(uuid, 1024 * MiB)).rejects.toMatchObject({
        kind: 'invalid-state',
        message: expect.stringContaining('not running'),
      });
      expect(memoryOf(await hypervisor.xml(uuid, { inactive: true })).currentKiB).toBe(262144);
      await remove(uuid);
    });

    it('refuses amounts that are not a positive whole number of bytes', async () => {
      const uuid = await running();
      for (const bytes of [0, -MiB, 1.5, Number.NaN, 2 ** 60]) {
        await expect(hypervisor.setMemory(uuid, bytes)).rejects.toMatchObject({
          kind: 'failed',
          message: expect.stringContaining('whole number of bytes'),
        });
      }
      await remove(uuid);
    });

    it('reports an unknown domain as not-found', async () => {
      await expect(hypervisor.setMemory(randomUUID(), 128 * MiB)).rejects.toMatchObject({
        name: 'HypervisorError',
        kind: 'not-found',
      });
    });
  });

  describe('domainSetMemoryFlags (binding)', () => {
    it('sets the persistent maximum and current memory with config and maximum, and checks its arguments', async () => {
      const { xml, uuid } = domain();
      await hypervisor.ensureDefined(xml);
      const conn = await pool.connection(hypervisor.uri);
      await conn.domainSetMemoryFlags(uuid, 524288, { config: true, maximum: true });
      await conn.domainSetMemoryFlags(uuid, 393216, { config: true });
      expect(memoryOf(await hypervisor.xml(uuid, { inactive: true }))).toEqual({ currentKiB: 393216, maxKiB: 524288 });
      // (Errors of the addon's realm: matched by name, not by class.)
      await expect(conn.domainSetMemoryFlags(uuid, -1)).rejects.toMatchObject({
        name: 'RangeError',
        message: 'kib must be a whole number from 0 to 2^53',
      });
      await expect(conn.domainSetMemoryFlags(uuid, '1024' as unknown as number)).rejects.toMatchObject({
        name: 'TypeError',
        message: 'kib must be a number',
      });
      await expect(conn.domainSetMemoryFlags(uuid, 1024, { live: 'yes' as unknown as boolean })).rejects.toMatchObject({
        name: 'TypeError',
        message: 'live must be a boolean',
      });
      await remove(uuid);
    });
  });

  describe('interfaceAddresses', () => {
    it.each(['lease', 'agent', 'arp'] as const)(
      'returns the test driver addresses with each interface MAC (source %s)',
      async (source) => {
        const uuid = await running();
        const nics = nicsOf(await hypervisor.xml(uuid));
        expect(nics).toHaveLength(2);

        const interfaces = await hypervisor.interfaceAddresses(uuid, source);
        expect(interfaces).toHaveLength(2);
        for (const iface of interfaces) {
          expect(Object.keys(iface).sort()).toEqual(['addresses', 'mac', 'name']);
          for (const address of iface.addresses)
            expect(Object.keys(address).sort()).toEqual(['address', 'prefix', 'type']);
        }
        const onNetwork = nics.find((n) => n.network === 'default')!;
        const onBridge = nics.find((n) => n.bridge === 'br0')!;
        expect(interfaces).toContainEqual({
          name: onNetwork.dev,
          mac: onNetwork.mac,
          addresses: [{ type: 'ipv4', address: expect.stringMatching(/^192\.168\.122\.\d+$/), prefix: 24 }],
        });
        // The test driver makes up 192.168.0.x for interfaces that are not on a libvirt network.
        expect(interfaces).toContainEqual({
          name: onBridge.dev,
          mac: onBridge.mac,
          addresses: [{ type: 'ipv4', address: expect.stringMatching(/^192\.168\.0\.\d+$/), prefix: 24 }],
        });
        expect(onNetwork.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
        await remove(uuid);
      },
    );

    it('refuses a stopped domain as invalid-state', async () => {
      const { xml, uuid } = domain();
      await hypervisor.ensureDefined(xml);
      await expect(hypervisor.interfaceAddresses(uuid, 'lease')).rejects.toMatchObject({
        kind: 'invalid-state',
        operation: `read lease addresses of domain ${uuid}`,
        message: expect.stringContaining('domain is not running'),
      });
      await remove(uuid);
    });

    it('reports an unknown domain as not-found', async () => {
      for (const source of ['lease', 'agent', 'arp'] as const) {
        await expect(hypervisor.interfaceAddresses(randomUUID(), source)).rejects.toMatchObject({
          name: 'HypervisorError',
          kind: 'not-found',
        });
      }
    });
  });
});
