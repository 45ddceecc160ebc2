// spec.healthCheck on a simulated host: a guest-agent probe (the test driver has no agent, so
// it fails) and a TCP probe of a VM without an address (nothing to connect to: no traffic) both
// fail; after failureThreshold failures in a row the VM is restarted, counted as a probe restart,
// with Healthy=False saying why. (The probes themselves against real servers: test/unit/health-probes.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { VmObject } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'probe-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const bench = new ControllerBench('vm-probe');
let pool = '';

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('probe', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(() => bench.close());

const restarts = (vm: VmObject) => vm.status?.restarts ?? 0;
const fast = { initialDelaySeconds: 0, failureThreshold: 2 };

describe('a VM whose health check fails', () => {
  it("reports Healthy=False with the probe's reason and the count, then restarts it", async () => {
    await bench.createVm('agentless', pool, {
      healthCheck: { ...fast, timeoutSeconds: 1, periodSeconds: 2, guestAgent: {} },
      recovery: { restartBackoff: { initialSeconds: 1, maxSeconds: 2 } },
    });
    const failing = await bench.untilVm(
      'agentless',
      (v) => condition(v, 'Healthy')?.status === 'False',
      'Healthy=False',
      30_000,
    );
    expect(condition(failing, 'Healthy')?.reason).toBe('ProbeFailed');
    expect(condition(failing, 'Healthy')?.message).toMatch(/^guest agent: .+ \(1 of 2 failures in a row\)$/);
    const restarted = await bench.untilVm('agentless', (v) => restarts(v) >= 1, 'restarted by the probe', 30_000);
    expect(restarted.status?.restarts).toBe(1);
    const events = await bench.events('agentless');
    expect(events.find((e) => e.reason === 'Unhealthy')?.message).toMatch(
      /\(2 of 2 failures in a row\); restarting the VM now \(restart 1\)$/,
    );
    const metric = await bench.manager!.metrics.vmRestarts.get();
    expect(metric.values.find((v) => v.labels.name === 'agentless')?.labels.reason).toBe('probe');
  });

  it('fails a TCP probe of a VM with no address without sending anything', async () => {
    await bench.createVm('noaddr', pool, {
      healthCheck: {
        initialDelaySeconds: 0,
        periodSeconds: 2,
        timeoutSeconds: 1,
        failureThreshold: 3,
        tcp: { port: 22 },
      },
    });
    const vm = await bench.untilVm(
      'noaddr',
      (v) => condition(v, 'Healthy')?.status === 'False',
      'Healthy=False',
      30_000,
    );
    expect(condition(vm, 'Healthy')?.message).toBe(
      'no address known for the guest (status.addresses is empty), cannot probe port 22 (1 of 3 failures in a row)',
    );
  });
});
