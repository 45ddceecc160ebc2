// virtfleet_vm_installing: 1 while a VM's OS install is under way (the installer runs, its media
// are put on the host, or it waits for another install on its MAC), read off the VM's Installed
// condition as the install step writes it. VirtfleetVMDown leaves such VMs out: a Kickstart
// install is not Ready for as long as it takes, and is not down. Installs that wait for a person
// (no endpoint, no valid profile, media that cannot be fetched) or failed are not "installing".
import { describe, expect, it } from '@jest/globals';
import type { VmObject } from '../../src/controllers/resources.js';
import { installing, vmSample } from '../../src/controllers/vm-metrics.js';
import { ControllerMetrics } from '../../src/observability/metrics.js';

const T = '2026-12-07T10:00:00Z';

function vm(
  name: string,
  phase: string,
  conditions: [type: string, status: 'True' | 'False', reason: string][],
  runStrategy = 'Always',
): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { namespace: 'shop', name, uid: `uid-${name}` },
    spec: { runStrategy, install: { profileRef: { name: 'rocky-9' } } },
    status: {
      phase,
      conditions: conditions.map(([type, status, reason]) => ({
        type,
        status,
        reason,
        message: '',
        lastTransitionTime: T,
      })),
    },
  } as unknown as VmObject;
}

const VMS = [
  // The installer runs.
  vm('kickstart', 'Installing', [
    ['Installed', 'False', 'Installing'],
    ['Ready', 'False', 'Installing'],
  ]),
  // Provisioning for its install: the installer's kernel and initrd are being put on the host.
  vm('media', 'Provisioning', [
    ['Installed', 'False', 'PreparingInstall'],
    ['Ready', 'False', 'PreparingInstall'],
  ]),
  // Another VM installs on the same MAC first.
  vm('queued', 'Provisioning', [
    ['Installed', 'False', 'InstallMacInUse'],
    ['Ready', 'False', 'InstallMacInUse'],
  ]),
  // Waits for a person: down, not installing.
  vm('no-endpoint', 'Provisioning', [
    ['Installed', 'False', 'InstallEndpointUnavailable'],
    ['Ready', 'False', 'InstallEndpointUnavailable'],
  ]),
  vm('bad-profile', 'Provisioning', [
    ['Installed', 'False', 'ProfileNotValid'],
    ['Ready', 'False', 'ProfileNotValid'],
  ]),
  vm('no-media', 'Provisioning', [
    ['Installed', 'False', 'InstallMediaFailed'],
    ['Ready', 'False', 'InstallMediaFailed'],
  ]),
  // Failed installs: down.
  vm('timed-out', 'Failed', [
    ['Installed', 'False', 'InstallTimedOut'],
    ['Ready', 'False', 'InstallTimedOut'],
  ]),
  vm('crashed', 'Failed', [
    ['Installed', 'False', 'InstallFailed'],
    ['Ready', 'False', 'InstallFailed'],
  ]),
  // Installed and running; and a VM without an install at all.
  vm('done', 'Running', [
    ['Installed', 'True', 'Installed'],
    ['Ready', 'True', 'Running'],
  ]),
  vm('plain', 'Provisioning', [['Ready', 'False', 'ProvisioningDisks']]),
  // Not meant to run (Halted): no VM gauge series at all, installing or not.
  vm('halted', 'Installing', [['Installed', 'False', 'Installing']], 'Halted'),
];

describe('virtfleet_vm_installing', () => {
  it('is true for an install under way only', () => {
    expect(Object.fromEntries(VMS.map((entry) => [entry.metadata.name, installing(entry)]))).toEqual({
      kickstart: true,
      media: true,
      queued: true,
      'no-endpoint': false,
      'bad-profile': false,
      'no-media': false,
      'timed-out': false,
      crashed: false,
      done: false,
      plain: false,
      halted: true,
    });
  });

  it('is exported for every VM meant to run, beside virtfleet_vm_ready', async () => {
    const metrics = new ControllerMetrics(undefined, { processMetrics: false });
    metrics.observeVms(() => VMS.map(vmSample));
    const text = await metrics.registry.metrics();
    const series = (metric: string) =>
      Object.fromEntries(
        text
          .split('\n')
          .filter((line) => line.startsWith(`${metric}{`))
          .map((line) => [/name="([^"]+)"/.exec(line)![1], Number(line.split(' ').pop())]),
      );
    expect(series('virtfleet_vm_installing')).toEqual({
      kickstart: 1,
      media: 1,
      queued: 1,
      'no-endpoint': 0,
      'bad-profile': 0,
      'no-media': 0,
      'timed-out': 0,
      crashed: 0,
      done: 0,
      plain: 0,
    });
    expect(Object.keys(series('virtfleet_vm_ready')).sort()).toEqual(
      Object.keys(series('virtfleet_vm_installing')).sort(),
    );
    expect(text).toContain('# TYPE virtfleet_vm_installing gauge');
  });

  it('virtfleet_vm_phase has one series per VM, its current phase, for every VM (halted ones too)', async () => {
    const metrics = new ControllerMetrics(undefined, { processMetrics: false });
    let phase = 'Pending';
    metrics.observeVms(() => [...VMS.map(vmSample), { ...vmSample(vm('mover', phase, [])), phase }]);
    const lines = async () =>
      (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('virtfleet_vm_phase{'));
    expect((await lines()).length).toBe(VMS.length + 1);
    expect((await lines()).filter((line) => line.includes('name="mover"'))).toEqual([
      'virtfleet_vm_phase{namespace="shop",name="mover",phase="Pending"} 1',
    ]);
    phase = 'Migrating';
    expect((await lines()).filter((line) => line.includes('name="mover"'))).toEqual([
      'virtfleet_vm_phase{namespace="shop",name="mover",phase="Migrating"} 1',
    ]);
    expect((await lines()).some((line) => line.includes('name="halted"'))).toBe(true);
  });
});
