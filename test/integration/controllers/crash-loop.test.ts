// A VM whose domain keeps going down on a simulated host: the first failure is restarted at
// once, the next ones wait in CrashLoopBackOff with a growing delay, each counted in
// status.restarts, an Event and the metrics.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';
import type { VmObject } from '../../../src/controllers/resources.js';

const HOST: HostDecl = { name: 'crash-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };

const bench = new ControllerBench('vm-crash');
let pool: string;

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('crash', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  await bench.close();
});

const restarts = (vm: VmObject) => vm.status?.restarts ?? 0;

/** Kills the running domain from outside (as a crash would) and returns when the VM saw it. */
async function crash(name: string): Promise<void> {
  const vm = await bench.untilVm(name, isRunning, 'Running before the crash');
  const before = restarts(vm);
  await bench.hypervisor(HOST).destroy(vm.metadata.uid ?? '');
  await bench.untilVm(name, (v) => restarts(v) === before + 1, 'the crash counted');
}

function backoffSeconds(vm: VmObject): number {
  const match = /next start in ([\d.]+) s/.exec(condition(vm, 'Ready')?.message ?? '');
  return Number(match?.[1]);
}

describe('a crashing VM', () => {
  it('is restarted at once after its first crash', async () => {
    await bench.createVm('flaky', pool, { recovery: { restartBackoff: { initialSeconds: 1, maxSeconds: 2 } } });
    await crash('flaky');
    const vm = await bench.untilVm('flaky', isRunning, 'Running again');
    expect(restarts(vm)).toBe(1);
  });

  it('waits in CrashLoopBackOff with a growing delay after the next crashes, then starts again', async () => {
    const delays: number[] = [];
    for (const failures of [2, 3]) {
      await crash('flaky');
      const waiting = await bench.untilVm('flaky', (v) => v.status?.phase === 'CrashLoopBackOff', 'CrashLoopBackOff');
      expect(condition(waiting, 'Ready')).toMatchObject({ status: 'False', reason: 'CrashLoopBackOff' });
      expect(condition(waiting, 'Ready')?.message).toMatch(
        new RegExp(
          `^the domain went down ${failures} times in a row; next start in [\\d.]+ s, at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(back-off doubles from 1 s up to 2 s;`,
        ),
      );
      delays.push(backoffSeconds(waiting));
      expect((await bench.hypervisor(HOST).state(waiting.metadata.uid ?? '')).state).toBe('shutoff');
      await bench.untilVm('flaky', isRunning, 'Running after the back-off', 10_000);
    }
    // 1 s then 2 s, each less up to 10 % jitter.
    expect(delays[0]).toBeGreaterThanOrEqual(0.9);
    expect(delays[0]).toBeLessThanOrEqual(1);
    expect(delays[1]).toBeGreaterThanOrEqual(1.8);
    expect(delays[1]).toBeLessThanOrEqual(2);
    const events = await bench.events('flaky');
    expect(events.filter((e) => e.reason === 'Restarted')).toHaveLength(3);
    expect(events.find((e) => e.reason === 'CrashLoopBackOff')).toMatchObject({ type: 'Warning' });
  });

  it('counts the restarts and the recoveries in the metrics', async () => {
    const metrics = bench.manager!.metrics;
    const restartsMetric = await metrics.vmRestarts.get();
    expect(restartsMetric.values.find((v) => v.labels.name === 'flaky')).toMatchObject({
      value: 3,
      labels: { namespace: bench.namespace, reason: 'crash' },
    });
    const recovery = await metrics.recoveryDuration.get();
    expect(
      recovery.values.find(
        (v) => v.metricName === 'virtfleet_recovery_duration_seconds_count' && v.labels.kind === 'crash',
      )?.value,
    ).toBe(3);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`virtfleet_vm_ready\\{namespace="${bench.namespace}",name="flaky"\\} 1`));
    expect(text).toMatch(new RegExp(`virtfleet_vm_crash_looping\\{namespace="${bench.namespace}",name="flaky"\\} 0`));
    expect(text).toMatch(/virtfleet_vms\{phase="Running"\} [1-9]/);
  });
});
