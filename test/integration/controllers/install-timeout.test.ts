// An install that does not end: with a short timeout (a controller option; profiles allow 5
// minutes at least) the installer is destroyed and the VM is Failed with Installed=False
// (InstallTimedOut), its URL 404, and it stays stopped — runStrategy Always included, a
// restarted controller included — until `virtfleet vm restart` (the action annotations), which
// starts the install again with a new token; that one ends with the guest's power-off, and the
// VM runs from its disk. An installer that is destroyed from outside fails the install
// (InstallFailed) the same way.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ControllersOptions } from '../../../src/controllers/setup.js';
import { child, parseXml } from '../../../src/hypervisors/xml.js';
import { ControllerBench, condition, isRunning } from './fixtures.js';
import { INSTALL_HOST as HOST, InstallBench, eventually, fetchText } from './install-fixtures.js';

// Read by every (re)start of the controller: the timeout is raised for the retry.
const options: Partial<ControllersOptions> = {
  installEndpoint: { address: '127.0.0.1:0' },
  installTimeoutMs: 3_000,
  hostRetryMs: 1_000,
};
const bench = new ControllerBench('vm-install-timeout', options);
const setup = new InstallBench();

beforeAll(async () => {
  await setup.start(bench);
});

afterAll(async () => {
  await setup.close();
});

/** The file the domain's serial console is copied to (<serial><log file>), in its persistent definition. */
async function serialLog(uid: string): Promise<string | undefined> {
  const domain = parseXml(await bench.hypervisor(HOST).xml(uid, { inactive: true }));
  return child(domain, 'devices', 'serial', 'log')?.attrs.file;
}

const failedWith = (reason: string) => (vm: Parameters<typeof isRunning>[0]) =>
  vm.status?.phase === 'Failed' &&
  condition(vm, 'Installed')?.status === 'False' &&
  condition(vm, 'Installed')?.reason === reason;

describe('VirtualMachine install that does not finish', () => {
  let firstUrl = '';

  it('fails with InstallTimedOut when the installer does not power off in time, and destroys it', async () => {
    const created = await setup.createVm('slow');
    const uid = created.metadata.uid ?? '';
    await bench.untilVm('slow', (vm) => vm.status?.phase === 'Installing', 'Installing');
    firstUrl = await setup.url('slow');
    expect((await fetchText(firstUrl)).status).toBe(200);
    // The installer's console is kept in a file on the host, for when it fails.
    const log = `/var/log/libvirt/qemu/${bench.vm('slow')?.status?.domainName ?? '?'}.installer.log`;
    expect(await serialLog(uid)).toBe(log);

    const vm = await bench.untilVm('slow', failedWith('InstallTimedOut'), 'Failed (InstallTimedOut)');
    expect(condition(vm, 'Installed')?.message).toMatch(
      /^the installer did not power the VM off within 3 s; destroyed\. .*`virtfleet vm restart slow` starts the install again$/,
    );
    expect(condition(vm, 'Installed')?.message).toContain(`the installer's serial console is in ${log} on host`);
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'False', reason: 'InstallTimedOut' });
    expect((await bench.domains(HOST)).find((d) => d.uuid === uid)).toMatchObject({
      state: 'shutoff',
      reason: 'destroyed',
    });
    expect(await fetchText(firstUrl)).toEqual({ status: 404, body: 'not found\n' });
    const warning = await eventually(
      async () => (await bench.events('slow')).find((e) => e.reason === 'InstallTimedOut'),
      'an InstallTimedOut Event',
    );
    expect(warning.type).toBe('Warning');
  });

  it('stays Failed and stopped, runStrategy Always and a controller restart notwithstanding', async () => {
    options.installTimeoutMs = 10 * 60_000;
    await bench.stopController();
    await bench.startController();
    // The new controller has looked at the VM: its first reconciles are done.
    await eventually(
      async () => ((await bench.reconciles('virtualmachine')) >= 1 ? true : undefined),
      'a reconcile of the new controller',
    );
    await bench.untilVm('slow', failedWith('InstallTimedOut'), 'still Failed');
    const uid = bench.vm('slow')?.metadata.uid ?? '';
    expect((await bench.domains(HOST)).find((d) => d.uuid === uid)?.state).toBe('shutoff');
    // Not booted from its empty disk either: the definition boots from the disk, but nothing starts it.
    expect((await setup.osBoot(uid)).kernel).toBeUndefined();
  });

  it('installs again on `virtfleet vm restart`, with a new token, and runs from its disk when that install ends', async () => {
    await bench.kube.patch(
      {
        kind: 'VirtualMachine',
        group: 'virtfleet.io',
        version: 'v1alpha1',
        plural: 'virtualmachines',
        namespaced: true,
      },
      bench.namespace,
      'slow',
      { metadata: { annotations: { 'virtfleet.io/action': 'restart', 'virtfleet.io/action-id': 'retry-1' } } },
    );
    const vm = await bench.untilVm(
      'slow',
      (v) => v.status?.phase === 'Installing' && v.status.lastAction?.id === 'retry-1',
      'Installing again',
    );
    expect(vm.status?.lastAction).toMatchObject({
      action: 'restart',
      state: 'Succeeded',
      message: `the install of InstallProfile ${bench.namespace}/rocky starts again`,
    });
    expect(condition(vm, 'Installed')).toMatchObject({ status: 'False', reason: 'Installing' });
    const uid = vm.metadata.uid ?? '';
    expect((await bench.domains(HOST)).find((d) => d.uuid === uid)?.state).toBe('running');
    const url = await setup.url('slow');
    const oldToken = firstUrl.split('/').at(-1)!;
    expect(url.split('/').at(-1)).not.toBe(oldToken);
    expect((await fetchText(url)).status).toBe(200);
    // The first token is dead (asked of the restarted controller's endpoint, on its new port).
    expect((await fetchText(url.replace(/[^/]+$/, oldToken))).status).toBe(404);

    await bench.hypervisor(HOST).shutdown(uid);
    const done = await bench.untilVm(
      'slow',
      (v) => isRunning(v) && condition(v, 'Installed')?.status === 'True',
      'Running and Installed',
    );
    expect(done.status?.lastAction?.id).toBe('retry-1'); // the request was done once
    expect((await setup.osBoot(uid)).bootDev).toBe('hd');
    expect(await serialLog(uid)).toBeUndefined(); // the installed system's console is not logged
    expect((await fetchText(url)).status).toBe(404);
  });

  it('fails with InstallFailed when the installer is destroyed from outside', async () => {
    const created = await setup.createVm('killed');
    await bench.untilVm('killed', (vm) => vm.status?.phase === 'Installing', 'Installing');
    const url = await setup.url('killed');
    await bench.hypervisor(HOST).destroy(created.metadata.uid ?? '');
    const vm = await bench.untilVm('killed', failedWith('InstallFailed'), 'Failed (InstallFailed)');
    expect(condition(vm, 'Installed')?.message).toMatch(
      /^the installer stopped \(shutoff, destroyed\) before the install finished; the installer's serial console is in \/var\/log\/libvirt\/qemu\/vf-[^ ]+_killed\.installer\.log on host test:\/\/\//,
    );
    expect((await fetchText(url)).status).toBe(404);
  });
});
