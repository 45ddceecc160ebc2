// spec.boot.method pxe on the real API server with a simulated host (libvirt's test driver): the
// controller defines what a PXE install needs on the host — its directory pool `vf-pxe` (the
// TFTP root) and the network `vf-install` (NAT, DHCP with the boot file, that directory as TFTP
// root), started and autostarted — and goes on up to the first file it must write there. The
// test driver has networks but no DHCP or TFTP, and takes no uploads, so that is where a PXE
// install stops here, and says so; the boot itself is tested on the real rig
// (test/e2e/install-pxe-rig.test.ts). A network of that name that serves something else is
// left alone, with a message that says what to do.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { child, parseXml } from '../../../src/hypervisors/xml.js';
import { BOOT_SCRIPT, PXE_DEFAULTS } from '../../../src/provisioning/pxe.js';
import { ControllerBench, condition } from './fixtures.js';
import { INSTALL_HOST as HOST, InstallBench, freePort } from './install-fixtures.js';

let bench: ControllerBench;
let setup: InstallBench;

beforeAll(async () => {
  setup = new InstallBench();
  bench = new ControllerBench('vm-install-pxe', {
    installEndpoint: { address: `127.0.0.1:${await freePort()}` },
    hostRetryMs: 1_000,
  });
  await setup.start(bench);
});

afterAll(async () => {
  await setup.close();
});

describe('VirtualMachine install by PXE (test driver: definitions only)', () => {
  it('defines the PXE pool and the install network on the host, then says it cannot write the boot file there', async () => {
    await setup.createProfile('rocky-pxe', { boot: { method: 'pxe' } });
    await setup.createVm('pxe-1', 'rocky-pxe');
    const vm = await bench.untilVm(
      'pxe-1',
      (v) => condition(v, 'Installed')?.reason === 'InstallMediaFailed',
      'InstallMediaFailed',
    );
    expect(condition(vm, 'Installed')?.message).toMatch(
      new RegExp(
        `^PXE boot file ${BOOT_SCRIPT} in storage pool ${PXE_DEFAULTS.pool}: upload into volume ${BOOT_SCRIPT} in pool ${PXE_DEFAULTS.pool} on test:///`,
      ),
    );
    expect(vm.status?.domainUUID).toBeUndefined(); // nothing that could boot is defined

    const host = bench.hypervisor(HOST);
    expect(await host.storagePoolPath(PXE_DEFAULTS.pool)).toBe(PXE_DEFAULTS.poolPath);
    const network = await host.network(PXE_DEFAULTS.network);
    expect(network?.active).toBe(true);
    const xml = parseXml(network!.xml);
    expect(child(xml, 'forward')?.attrs.mode).toBe('nat');
    expect(child(xml, 'bridge')?.attrs.name).toBe(PXE_DEFAULTS.bridge);
    expect(child(xml, 'ip')?.attrs).toMatchObject({ address: PXE_DEFAULTS.address, netmask: '255.255.255.0' });
    expect(child(xml, 'ip', 'tftp')?.attrs.root).toBe(PXE_DEFAULTS.poolPath);
    expect(child(xml, 'ip', 'dhcp', 'bootp')?.attrs.file).toBe(BOOT_SCRIPT);
    expect(child(xml, 'ip', 'dhcp', 'range')?.attrs).toMatchObject({ start: '192.168.213.10', end: '192.168.213.250' });
    // Nothing half-written is left for a booting guest to read.
    expect(await host.volume(PXE_DEFAULTS.pool, BOOT_SCRIPT)).toBeUndefined();
  });

  it('leaves a network of its name that serves something else alone, and says what to do', async () => {
    const host = bench.hypervisor(HOST);
    // (Redefined in place: on the test driver, only this connection sees the host's state.)
    const uuid = child(parseXml((await host.network(PXE_DEFAULTS.network))!.xml), 'uuid')?.text;
    await host.stopNetwork(PXE_DEFAULTS.network);
    await host.defineNetwork(
      `<network><name>${PXE_DEFAULTS.network}</name><uuid>${uuid}</uuid><bridge name='vfother0'/><ip address='10.9.9.1' netmask='255.255.255.0'/></network>`,
    );
    await setup.createVm('pxe-2', 'rocky-pxe');
    const vm = await bench.untilVm(
      'pxe-2',
      (v) => condition(v, 'Installed')?.message.startsWith(`network ${PXE_DEFAULTS.network} exists`) === true,
      'a foreign network named',
    );
    expect(condition(vm, 'Installed')?.message).toContain(`virsh net-destroy/net-undefine ${PXE_DEFAULTS.network}`);
    expect(child(parseXml((await host.network(PXE_DEFAULTS.network))!.xml), 'bridge')?.attrs.name).toBe('vfother0');
  });
});
