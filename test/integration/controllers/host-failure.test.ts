// A host fails under its VMs (simulated hosts; the failure is the host's URI turned unreachable,
// which the HostPool controller sees as a host it can no longer reach): without fencing the VM
// waits and says why; with a failing fencing command it waits and the command is retried; with
// a fencing command that succeeds the VM is started on another host, and once the failed host is
// back its stale copy is removed. The fencing command's environment carries the Secret's keys,
// whose values appear in no status or Event.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HOST_POOL } from '../../../src/controllers/resources.js';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { runDelete } from '../../../src/cli/vm.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'a-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const B: HostDecl = { name: 'b-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';
const SECRET_VALUE = 'ipmi-pass-7f3a9c';

const bench = new ControllerBench('host-fail', { hostRetryMs: 1_000 });
let fenceScript: string;
let fenceLog: string;

beforeAll(async () => {
  await bench.start();
  fenceLog = join(bench.hosts.dir, 'fence.log');
  fenceScript = join(bench.hosts.dir, 'fence.sh');
  // Records what it was given; exits with what the file `fence.rc` says (0 when absent). It
  // prints the password, as careless scripts do: it must be masked.
  writeFileSync(
    fenceScript,
    `#!/bin/sh\necho "host=$VIRTFLEET_HOST uri=$VIRTFLEET_HOST_URI pool=$VIRTFLEET_POOL user=$IPMI_USER pass=$IPMI_PASSWORD args=$*" >> ${fenceLog}\n` +
      `echo "powering off with $IPMI_PASSWORD"\nrc=$(cat ${bench.hosts.dir}/fence.rc 2>/dev/null || echo 0)\nexit $rc\n`,
  );
  chmodSync(fenceScript, 0o755);
  await bench.kube.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'ipmi', namespace: bench.namespace },
    data: {
      IPMI_USER: Buffer.from('admin').toString('base64'),
      IPMI_PASSWORD: Buffer.from(SECRET_VALUE).toString('base64'),
    },
  } as KubeObject);
});

afterAll(() => bench.close());

function hostSpec(decl: HostDecl, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...bench.poolSpecHosts([decl])[0], ...extra };
}

async function setHosts(pool: string, hosts: Array<Record<string, unknown>>): Promise<void> {
  await bench.kube.patch(HOST_POOL, undefined, pool, { spec: { hosts } });
}

/** A pool with host A only, and one running VM on it; then host B joins. */
async function poolWithVmOnA(name: string, fencing?: Record<string, unknown>): Promise<string> {
  const pool = await bench.createPool(name, [A]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'A ready');
  await bench.createVm(`vm-${name}`, pool);
  await bench.untilVm(`vm-${name}`, isRunning, 'Running on A');
  await setHosts(pool, [hostSpec(A, fencing ? { fencing } : {}), hostSpec(B)]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'A and B ready');
  return pool;
}

describe('a failed host without fencing', () => {
  it('keeps its VM where it is, saying why and what to do', async () => {
    const pool = await poolWithVmOnA('nofence');
    await setHosts(pool, [hostSpec(A, { uri: UNREACHABLE_URI }), hostSpec(B)]);
    const vm = await bench.untilVm(
      'vm-nofence',
      (v) => condition(v, 'Ready')?.reason === 'RecoveryBlocked',
      'RecoveryBlocked',
    );
    expect(vm.status?.phase).toBe('Unknown');
    expect(vm.status?.host).toBe('a-1');
    expect(condition(vm, 'Ready')?.status).toBe('Unknown');
    expect(condition(vm, 'Ready')?.message).toMatch(
      /^host a-1 failed \((Unreachable|Disconnected): .*\); the VM is not started elsewhere because its old copy may still be running there and no fencing is configured \(HostPool .* spec\.hosts\[a-1\]\.fencing\)/,
    );
    expect(await bench.domains(B)).toEqual([]);
    const text = await bench.manager!.metrics.registry.metrics();
    expect(text).toContain(
      `virtfleet_vm_recovery_blocked{namespace="${bench.namespace}",name="vm-nofence",reason="no_fencing"} 1`,
    );
    await setHosts(pool, [hostSpec(A), hostSpec(B)]);
    await bench.untilVm('vm-nofence', isRunning, 'Running on A again');
    expect(bench.vm('vm-nofence')?.status?.host).toBe('a-1');
  });
});

describe('a VM of a failed host removed with `vm delete --force`', () => {
  it('takes its per-VM metric series with it (virtfleet_vm_recovery_blocked)', async () => {
    const pool = await poolWithVmOnA('forced');
    await setHosts(pool, [hostSpec(A, { uri: UNREACHABLE_URI }), hostSpec(B)]);
    await bench.untilVm('vm-forced', (v) => condition(v, 'Ready')?.reason === 'RecoveryBlocked', 'RecoveryBlocked');
    const series = `virtfleet_vm_recovery_blocked{namespace="${bench.namespace}",name="vm-forced",reason="no_fencing"} 1`;
    expect(await bench.manager!.metrics.registry.metrics()).toContain(series);
    // The host is gone for good: the operator removes the VM without the controller's clean-up.
    const lines: string[] = [];
    await runDelete('vm-forced', { namespace: bench.namespace, wait: true, timeout: '1', force: true }, (line) =>
      lines.push(line),
    );
    expect(lines.at(-1)).toBe('vm/vm-forced: finalizer removed; the object is gone');
    await bench.until(() => !bench.vm('vm-forced'), 10_000, 'vm-forced gone');
    // The controller forgets the VM when its delete event reaches its cache.
    for (
      const deadline = Date.now() + 10_000;
      (await bench.manager!.metrics.registry.metrics()).includes('name="vm-forced"');
    ) {
      if (Date.now() > deadline)
        throw new Error(
          `series of vm-forced still exported:\n${(await bench.manager!.metrics.registry.metrics())
            .split('\n')
            .filter((l) => l.includes('vm-forced'))
            .join('\n')}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await setHosts(pool, [hostSpec(A), hostSpec(B)]);
  });
});

describe('a failed host with a fencing command', () => {
  let pool = '';
  const fencing = () => ({
    method: 'command',
    command: [fenceScript, '--hard'],
    secretRef: { name: 'ipmi', namespace: bench.namespace },
  });

  it('keeps the VM waiting while fencing fails, and retries', async () => {
    pool = await poolWithVmOnA('fence', fencing());
    writeFileSync(join(bench.hosts.dir, 'fence.rc'), '3');
    await setHosts(pool, [hostSpec(A, { uri: UNREACHABLE_URI, fencing: fencing() }), hostSpec(B)]);
    const vm = await bench.untilVm(
      'vm-fence',
      (v) => condition(v, 'Ready')?.message?.includes('fencing it failed') === true,
      'fencing failed',
    );
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'RecoveryBlocked' });
    const failed = await bench.untilPool(
      pool,
      (p) => p.status?.hosts?.find((h) => h.name === 'a-1')?.fencing?.state === 'Failed',
      'fencing Failed',
    );
    expect(failed.status?.hosts?.find((h) => h.name === 'a-1')?.fencing?.message).toBe(
      `${fenceScript} exited 3: powering off with ***`,
    );
    expect(await bench.domains(B)).toEqual([]);
  });

  it('starts the VM on another host once the command confirms the power-off', async () => {
    writeFileSync(join(bench.hosts.dir, 'fence.rc'), '0');
    // The retry comes after 10 s; a changed pool spec does not hurry it (nothing to do here but wait).
    const moved = await bench.untilVm(
      'vm-fence',
      (v) => isRunning(v) && v.status?.host === 'b-1',
      'Running on B',
      30_000,
    );
    expect(moved.status?.restarts).toBe(1);
    expect((await bench.domains(B)).map((d) => [d.uuid, d.state])).toEqual([[moved.metadata.uid, 'running']]);
    const fenced = await bench.untilPool(
      pool,
      (p) => p.status?.hosts?.find((h) => h.name === 'a-1')?.fencing?.state === 'Fenced',
      'Fenced',
    );
    expect(fenced.status?.hosts?.find((h) => h.name === 'a-1')?.fencing).toMatchObject({
      attempts: 2,
      message: `${fenceScript} exited 0: powering off with ***`,
    });
    const calls = readFileSync(fenceLog, 'utf8').trim().split('\n');
    expect(calls.at(-1)).toBe(
      `host=a-1 uri=${UNREACHABLE_URI} pool=${pool} user=admin pass=${SECRET_VALUE} args=--hard`,
    );
    const reasons = (await bench.events('vm-fence')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['RecoveryBlocked', 'Evacuated', 'Started']));
    const recovery = await bench.manager!.metrics.recoveryDuration.get();
    expect(
      recovery.values.find(
        (v) => v.metricName === 'virtfleet_recovery_duration_seconds_count' && v.labels.kind === 'host',
      )?.value,
    ).toBe(1);
  });

  it('removes the stale copy from the failed host when it is back', async () => {
    const uid = bench.vm('vm-fence')!.metadata.uid ?? '';
    expect((await bench.hypervisor(A).lookup(uid))?.state).toBe('running'); // the simulated host was never really off
    await setHosts(pool, [hostSpec(A, { fencing: fencing() }), hostSpec(B)]);
    await bench.untilPool(
      pool,
      (p) => p.status?.readyHosts === 2 && !p.status.hosts?.some((h) => h.fencing),
      'both ready, fencing cleared',
    );
    for (const deadline = Date.now() + 10_000; (await bench.hypervisor(A).lookup(uid)) !== undefined;) {
      if (Date.now() > deadline) throw new Error('the stale copy is still on a-1');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(bench.vm('vm-fence')?.status?.host).toBe('b-1');
    expect((await bench.domains(B)).map((d) => d.state)).toEqual(['running']);
  });

  it('shows the Secret value nowhere in status or Events', async () => {
    const everything = JSON.stringify({
      pools: bench.pools.list().map((p) => p.status),
      vms: bench.vms.list().map((v) => v.status),
      events: await bench.kube.list(
        { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
        {},
      ),
    });
    expect(existsSync(fenceLog)).toBe(true);
    expect(everything).not.toContain(SECRET_VALUE);
  });
});
