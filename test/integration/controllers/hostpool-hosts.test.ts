// Hosts of a HostPool over their life, on the real API server and test-driver hosts: a steady
// pool that is also scanned for orphan domains every second writes nothing; a host removed
// from spec.hosts while a VM is placed on it is held back (RemovalBlocked) until the VM is
// deleted; a host whose URI stops answering is NotReady with a reason, the pool Degraded, and
// the VM on it Ready=Unknown. The per-host metrics follow, and pass promtool.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { HOST_POOL, VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { buildDomainXml } from '../../../src/hypervisors/domain-xml.js';
import type { Gauge } from 'prom-client';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const QUIET: HostDecl = { name: 'quiet-1', cpus: 2, memoryGiB: 2, hypervisor: 'kvm' };
const KEEP: HostDecl = { name: 'keep-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const LEAVE: HostDecl = { name: 'leave-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const FAR: HostDecl = { name: 'far-1', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
/** Nothing listens there: connections are refused at once. */
const UNREACHABLE_URI = 'qemu+tcp://127.0.0.1:1/system';

// Orphan scans every second, so that the steady-state test sees several.
const bench = new ControllerBench('hp-hosts', { orphanScanIntervalMs: 1000 });

beforeAll(() => bench.start());
afterAll(() => bench.close());

async function gauge(metric: Gauge<'pool' | 'host'>, pool: string, host: string): Promise<number | undefined> {
  return (await metric.get()).values.find((v) => v.labels.pool === pool && v.labels.host === host)?.value;
}

async function scans(pool: string): Promise<number> {
  const metric = await bench.manager!.metrics.orphanScans.get();
  return metric.values
    .filter((v) => v.labels.pool === pool && v.labels.result === 'success')
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` (which reads something no watch tells about) until it holds or the deadline passes. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function hostsOf(spec: Array<Record<string, unknown>>) {
  return { spec: { hosts: spec } };
}

describe('HostPool hosts', () => {
  it('writes nothing while a pool with an orphan domain is steady, although its hosts are scanned every second', async () => {
    const uid = randomUUID();
    await bench.hypervisor(QUIET).ensureDefined(
      buildDomainXml({
        uid,
        namespace: bench.namespace,
        name: 'left-behind',
        spec: {
          cpu: { sockets: 1, cores: 1, threads: 1 },
          memory: '128Mi',
          firmware: { type: 'bios', secureBoot: false },
          kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
          disks: [],
          networks: [],
        },
        target: { hypervisor: 'kvm', kvmUsable: false },
      }).xml,
    );
    const pool = await bench.createPool('quiet', [QUIET], { failureDetection: { heartbeatPeriodSeconds: 1 } });
    await bench.untilPool(pool, (p) => p.status?.hosts?.[0]?.orphanDomains === 1, 'the orphan reported');
    // The Warning Event of the first report is the last write; wait for it to land.
    await eventually(
      async () => {
        const events = await bench.kube.list<
          { reason?: string; involvedObject?: { uid?: string } } & Record<string, unknown>
        >({ kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: 'default' });
        return events.items.some(
          (e) => e.reason === 'OrphanDomainsFound' && e.involvedObject?.uid === bench.pool(pool)?.metadata.uid,
        );
      },
      10_000,
      'the OrphanDomainsFound Event',
    );

    const writes = bench.manager!.client.counts.writes;
    const start = await scans(pool);
    await eventually(async () => (await scans(pool)) >= start + 3, 20_000, 'three more orphan scans');
    expect(bench.manager!.client.counts.writes - writes).toBe(0);
    expect(await gauge(bench.manager!.metrics.orphanDomains, pool, QUIET.name)).toBe(1);
    // The heartbeat time came with the writes that reported the host; heartbeats alone write nothing.
    const heard = bench.pool(pool)?.status?.hosts?.[0]?.lastHeartbeatTime;
    expect(heard).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(heard!)).toBeGreaterThanOrEqual(
      new Date(bench.pool(pool)!.metadata.creationTimestamp!).getTime() - 1000,
    );
  });

  it('holds back a host removed from spec.hosts while a VM is placed on it, and lets it go once the VM is deleted', async () => {
    const pool = await bench.createPool('shrink', [KEEP, LEAVE], { failureDetection: { heartbeatPeriodSeconds: 1 } });
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 2, 'both hosts ready');
    // Only leave-1 carries the label the VM asks for.
    const [keep, leave] = bench.poolSpecHosts([KEEP, LEAVE]);
    await bench.kube.patch(HOST_POOL, undefined, pool, hostsOf([keep!, { ...leave!, labels: { role: 'leaving' } }]));
    await bench.createVm('tenant', pool, { placement: { hostSelector: { matchLabels: { role: 'leaving' } } } });
    const vm = await bench.untilVm('tenant', isRunning, 'Running');
    expect(vm.status?.host).toBe(LEAVE.name);
    const metrics = bench.manager!.metrics;
    expect(await gauge(metrics.hostVms, pool, LEAVE.name)).toBe(1);

    await bench.kube.patch(HOST_POOL, undefined, pool, hostsOf([keep!]));
    const blocked = await bench.untilPool(
      pool,
      (p) => condition(p, 'RemovalBlocked')?.status === 'True',
      'RemovalBlocked=True',
    );
    expect(condition(blocked, 'RemovalBlocked')).toMatchObject({
      reason: 'HostsStillHaveVMs',
      observedGeneration: blocked.metadata.generation,
    });
    expect(condition(blocked, 'RemovalBlocked')?.message).toContain(`leave-1 (1 VMs: ${bench.namespace}/tenant)`);
    expect(blocked.status?.hosts?.map((h) => h.name)).toEqual([KEEP.name]);
    expect(blocked.status?.hostCount).toBe(1);
    // Still connected and counted, but not ready: it takes no new VMs.
    expect(await gauge(metrics.hostVms, pool, LEAVE.name)).toBe(1);
    expect(await gauge(metrics.hostReady, pool, LEAVE.name)).toBe(0);
    expect(await gauge(metrics.hostReady, pool, KEEP.name)).toBe(1);
    // The VM keeps running where it is.
    expect((await bench.domains(LEAVE)).map((d) => [d.uuid, d.state])).toEqual([[vm.metadata.uid, 'running']]);

    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'tenant');
    await bench.until(() => bench.vm('tenant') === undefined, 30_000, 'tenant to be gone');
    const released = await bench.untilPool(
      pool,
      (p) => condition(p, 'RemovalBlocked')?.status === 'False',
      'RemovalBlocked=False',
    );
    expect(condition(released, 'RemovalBlocked')).toMatchObject({ reason: 'NothingBlocked' });
    expect(released.status?.hosts?.map((h) => h.name)).toEqual([KEEP.name]);
    expect(await bench.domains(LEAVE)).toEqual([]);
    // The host is gone from the controller, and so are its series.
    await eventually(
      async () => (await gauge(metrics.hostVms, pool, LEAVE.name)) === undefined,
      10_000,
      'the series of leave-1 to go',
    );
    expect(await gauge(metrics.hostReady, pool, LEAVE.name)).toBeUndefined();
    expect(await gauge(metrics.hostReady, pool, KEEP.name)).toBe(1);
  });

  it('reports a host that stops answering, degrades the pool, and marks its VM Ready=Unknown until the host is back', async () => {
    const pool = await bench.createPool('far', [FAR], {
      failureDetection: { heartbeatPeriodSeconds: 1, failureThreshold: 1 },
    });
    await bench.createVm('remote', pool);
    const running = await bench.untilVm('remote', isRunning, 'Running');
    expect(running.status?.host).toBe(FAR.name);

    const [far] = bench.poolSpecHosts([FAR]);
    const before = bench.pool(pool)?.status?.hosts?.[0]?.lastHeartbeatTime;
    expect(before).toBeDefined();
    await bench.kube.patch(HOST_POOL, undefined, pool, hostsOf([{ ...far!, uri: UNREACHABLE_URI }]));
    try {
      await expectDown(pool, before!);
    } finally {
      // The host answers again (its old URI), also when the test failed: the VM can then be deleted.
      await bench.kube.patch(HOST_POOL, undefined, pool, hostsOf([far!]));
    }
    await bench.untilPool(
      pool,
      (p) => p.status?.readyHosts === 1 && condition(p, 'Degraded')?.status === 'False',
      'far-1 ready again',
    );
    const back = await bench.untilVm('remote', isRunning, 'Running again');
    expect(back.status?.host).toBe(FAR.name);
    expect((await bench.domains(FAR)).map((d) => [d.uuid, d.state])).toEqual([[back.metadata.uid, 'running']]);
  });

  async function expectDown(pool: string, before: string): Promise<void> {
    const metrics = bench.manager!.metrics;
    const down = await bench.untilPool(
      pool,
      (p) => p.status?.hosts?.[0]?.ready === false && p.status.observedGeneration === p.metadata.generation,
      'far-1 not ready',
    );
    const entry = down.status!.hosts![0]!;
    expect(['Unreachable', 'Disconnected']).toContain(entry.reason);
    // When it was last heard: before it went down (the new URI never answered), not dropped.
    expect(Date.parse(entry.lastHeartbeatTime!)).toBeGreaterThanOrEqual(Date.parse(before));
    expect(Date.parse(entry.lastHeartbeatTime!)).toBeLessThanOrEqual(Date.parse(entry.lastTransitionTime!));
    expect(entry.message).toContain(UNREACHABLE_URI);
    expect(down.status?.readyHosts).toBe(0);
    expect(condition(down, 'Degraded')).toMatchObject({ status: 'True', reason: 'HostsNotReady' });
    expect(condition(down, 'Degraded')?.message).toContain(`far-1: ${entry.reason} (`);
    expect(condition(down, 'Ready')).toMatchObject({ status: 'False', reason: 'NoHostReady' });
    expect(await gauge(metrics.hostReady, pool, FAR.name)).toBe(0);
    expect(await gauge(metrics.hostVms, pool, FAR.name)).toBe(1);

    // While the new URI is first tried the host is only Connecting (Ready=Unknown, HostNotReady);
    // once it has failed, the VM says why it is not started elsewhere: no fencing configured.
    const unknown = await bench.untilVm(
      'remote',
      (vm) => condition(vm, 'Ready')?.status === 'Unknown' && condition(vm, 'Ready')?.reason === 'RecoveryBlocked',
      'Ready=Unknown, RecoveryBlocked',
    );
    expect(condition(unknown, 'Ready')?.message).toContain('host far-1 failed');
    expect(condition(unknown, 'Ready')?.message).toContain('no fencing is configured');
    expect(unknown.status?.phase).toBe('Unknown');
    expect(unknown.status?.host).toBe(FAR.name); // not moved anywhere
  }

  it('serves the per-host, orphan and API request metrics in a form promtool accepts', async () => {
    const text = await bench.manager!.metrics.registry.metrics();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (check.error)
      throw new Error(`promtool could not run (hack/setup.sh installs the prometheus package): ${check.error.message}`);
    expect({ status: check.status, problems: (check.stdout + check.stderr).trim() }).toEqual({
      status: 0,
      problems: '',
    });
    const quiet = bench.poolName('quiet');
    expect(text).toContain(`virtfleet_host_ready{pool="${quiet}",host="quiet-1"} 1`);
    expect(text).toContain(`virtfleet_orphan_domains{pool="${quiet}",host="quiet-1"} 1`);
    expect(text).toContain(`virtfleet_host_capacity_cpus{pool="${quiet}",host="quiet-1"} 2`);
    expect(text).toContain(`virtfleet_host_capacity_memory_bytes{pool="${quiet}",host="quiet-1"} ${2 * 2 ** 30}`);
    expect(text).toMatch(new RegExp(`^virtfleet_host_vms\\{pool="${bench.poolName('far')}",host="far-1"\\} 1$`, 'm'));
    expect(text).toMatch(
      new RegExp(`^virtfleet_host_allocated_cpus\\{pool="${bench.poolName('far')}",host="far-1"\\} 1$`, 'm'),
    );
    expect(text).toMatch(
      new RegExp(
        `^virtfleet_host_allocated_memory_bytes\\{pool="${bench.poolName('far')}",host="far-1"\\} ${128 * 2 ** 20}$`,
        'm',
      ),
    );
    expect(text).toMatch(/^virtfleet_orphan_scans_total\{pool="[^"]+",result="success"\} [1-9]/m);
    // The API requests of the whole process: status writes, finalizers, Events, lists.
    expect(text).toMatch(
      /^virtfleet_kube_requests_total\{verb="patch",resource="hostpools\/status",code="2xx"\} [1-9]/m,
    );
    expect(text).toMatch(/^virtfleet_kube_requests_total\{verb="create",resource="events",code="2xx"\} [1-9]/m);
    expect(text).toMatch(/^virtfleet_kube_requests_total\{verb="list",resource="virtualmachines",code="2xx"\} [1-9]/m);
  });
});
