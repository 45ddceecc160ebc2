// Virtual networks through the binding, against libvirt's test driver:
// define from XML, start, destroy, undefine, XML, isActive, list. The test
// driver keeps no DHCP leases: virNetworkGetDHCPLeases rejects with
// VIR_ERR_NO_SUPPORT there.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { el, serialize, uniqueName } from './fixtures.js';

function networkXml(name: string, bridge: string, octet: number): string {
  return serialize(
    el(
      'network',
      {},
      el('name', {}, name),
      el('bridge', { name: bridge }),
      el(
        'ip',
        { address: `192.168.${octet}.1`, netmask: '255.255.255.0' },
        el('dhcp', {}, el('range', { start: `192.168.${octet}.2`, end: `192.168.${octet}.254` })),
      ),
    ),
  );
}

describe('libvirt networks (test driver)', () => {
  let conn: LibvirtConnection;
  const name = uniqueName('net');
  const bridge = `vfbr${process.pid % 100000}`;

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
  });
  afterAll(async () => {
    await conn.networkDestroy(name).catch(() => undefined);
    await conn.networkUndefine(name).catch(() => undefined);
    await conn.close();
  });

  it('defines a network from XML, finds it, lists it inactive, and returns its XML', async () => {
    const net = await conn.networkDefineXML(networkXml(name, bridge, 150), { validate: true });
    expect(net).toEqual({ name, uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(await conn.lookupNetworkByName(name)).toEqual(net);
    expect(await conn.networkIsActive(name)).toBe(false);
    expect((await conn.listNetworks()).find((n) => n.name === name)).toEqual({
      ...net,
      active: false,
      persistent: true,
      autostart: false,
    });
    const xml = await conn.networkGetXMLDesc(name);
    expect(xml).toContain(`<name>${name}</name>`);
    expect(xml).toContain(`<bridge name='${bridge}'`);
    expect(xml).toContain("<range start='192.168.150.2' end='192.168.150.254'/>");
    expect(xml).toContain(`<uuid>${net.uuid}</uuid>`);
    // The test driver takes no flags here.
    await expect(conn.networkGetXMLDesc(name, { inactive: true })).rejects.toMatchObject({
      codeName: 'VIR_ERR_INVALID_ARG',
      message: expect.stringContaining('unsupported flags'),
    });
  });

  it('starts and stops the network, with isActive and the list following', async () => {
    await conn.networkCreate(name);
    expect(await conn.networkIsActive(name)).toBe(true);
    expect((await conn.listNetworks()).find((n) => n.name === name)).toMatchObject({ active: true });
    await expect(conn.networkCreate(name)).rejects.toMatchObject({ codeName: 'VIR_ERR_OPERATION_INVALID' });

    await conn.networkSetAutostart(name, true);
    expect((await conn.listNetworks()).find((n) => n.name === name)).toMatchObject({ autostart: true });
    await conn.networkSetAutostart(name, false);

    await conn.networkDestroy(name);
    expect(await conn.networkIsActive(name)).toBe(false);
  });

  it('rejects DHCP leases with VIR_ERR_NO_SUPPORT (the test driver keeps none)', async () => {
    await conn.networkCreate(name);
    await expect(conn.networkGetDHCPLeases(name)).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
      code: 3,
      domainName: 'VIR_FROM_NETWORK',
    });
    await expect(conn.networkGetDHCPLeases(name, { mac: '52:54:00:00:00:01' })).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_SUPPORT',
    });
    await conn.networkDestroy(name);
  });

  it('undefines the network', async () => {
    await conn.networkUndefine(name);
    await expect(conn.lookupNetworkByName(name)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_NETWORK', code: 43 });
    expect((await conn.listNetworks()).map((n) => n.name)).not.toContain(name);
  });

  it('rejects a duplicate name, broken XML and unknown networks', async () => {
    await expect(conn.networkDefineXML(serialize(el('network', {}, el('name', {}, 'default'))))).rejects.toMatchObject({
      codeName: 'VIR_ERR_OPERATION_FAILED',
    });
    await expect(conn.networkDefineXML('<network>')).rejects.toMatchObject({ codeName: 'VIR_ERR_XML_DETAIL' });
    for (const call of [
      conn.networkCreate(uniqueName('none')),
      conn.networkDestroy(uniqueName('none')),
      conn.networkGetXMLDesc(uniqueName('none')),
    ]) {
      await expect(call).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_NETWORK' });
    }
    await expect(conn.networkSetAutostart(name, 'yes' as unknown as boolean)).rejects.toMatchObject({
      name: 'TypeError',
    });
  });
});
