// Orphan domains: domains on a host with virtfleet's metadata marker whose UUID is no
// VirtualMachine's UID. Defined here directly through the Hypervisor, on the definition-file
// hosts the controller uses. They are reported (status, condition, Event, metric) and never
// touched, except a domain of a VM this controller deleted itself; removing them clears the report. The scan interval stays at its default (minutes),
// so what is seen here comes from first contact, domain events and VM deletions.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { HOST_POOL } from '../../../src/controllers/resources.js';
import { buildDomainXml, type DomainXml } from '../../../src/hypervisors/domain-xml.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const A: HostDecl = { name: 'orph-a', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };
const B: HostDecl = { name: 'orph-b', cpus: 4, memoryGiB: 4, hypervisor: 'kvm' };

const bench = new ControllerBench('hp-orphans');
let pool: string;
/** Defined before the pool existed, and started. */
let lost: DomainXml;
/** Defined on B while the controller runs. */
let late: DomainXml;
const foreignUuid = randomUUID();

/** A domain as the VM controller would define it for VM `name` of the test's namespace, with a UID no object has. */
function orphanXml(name: string): DomainXml {
  return buildDomainXml({
    uid: randomUUID(),
    namespace: bench.namespace,
    name,
    spec: {
      cpu: { sockets: 1, cores: 1, threads: 1 },
      memory: '128Mi',
      firmware: { type: 'bios', secureBoot: false },
      kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
      disks: [],
      networks: [],
    },
    target: { hypervisor: 'kvm', kvmUsable: false },
  });
}

function hostEntry(host: HostDecl) {
  return bench.pool(pool)?.status?.hosts?.find((h) => h.name === host.name);
}

async function orphanGauge(host: HostDecl): Promise<number | undefined> {
  const metric = await bench.manager!.metrics.orphanDomains.get();
  return metric.values.find((v) => v.labels.pool === pool && v.labels.host === host.name)?.value;
}

async function scans(): Promise<number> {
  const metric = await bench.manager!.metrics.orphanScans.get();
  return metric.values
    .filter((v) => v.labels.pool === pool && v.labels.result === 'success')
    .reduce((sum, v) => sum + v.value, 0);
}

type EventObject = KubeObject & { reason?: string; message?: string; type?: string; involvedObject?: { uid?: string } };

/** Events on the pool (cluster-scoped: in namespace default). */
async function poolEvents(): Promise<EventObject[]> {
  const uid = bench.pool(pool)?.metadata.uid;
  const list = await bench.kube.list<EventObject>(
    { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
    { namespace: 'default' },
  );
  return list.items.filter((event) => event.involvedObject?.uid === uid);
}

/** Polls `check` (which reads something no watch tells about) until it holds or the deadline passes. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  await bench.start();
  const hostA = bench.hypervisor(A);
  lost = orphanXml('lost');
  await hostA.ensureDefined(lost.xml);
  await hostA.start(lost.uuid);
  // Not virtfleet's: no marker. Never reported.
  await hostA.ensureDefined(
    `<domain type="test"><name>foreign-${foreignUuid.slice(0, 8)}</name><uuid>${foreignUuid}</uuid><memory unit="KiB">131072</memory><os><type>hvm</type></os></domain>`,
  );
  pool = await bench.createPool('orph', [A, B], { failureDetection: { heartbeatPeriodSeconds: 1 } });
});

afterAll(async () => {
  await bench.close();
});

describe('orphan domains', () => {
  it('reports a domain with the marker and no VirtualMachine on first contact, and leaves it running', async () => {
    const current = await bench.untilPool(
      pool,
      (p) => condition(p, 'OrphanDomains')?.status === 'True' && hostEntry(A)?.orphanDomains === 1,
      'OrphanDomains=True',
    );
    expect(hostEntry(B)?.orphanDomains).toBe(0);
    const orphans = condition(current, 'OrphanDomains')!;
    expect(orphans.reason).toBe('OrphanDomainsFound');
    expect(orphans.observedGeneration).toBe(current.metadata.generation);
    expect(orphans.message).toContain(
      `1 domain with virtfleet's marker but no VirtualMachine: orph-a (${bench.hostUri(A)}): ${lost.name}.`,
    );
    expect(orphans.message).toContain(`virsh -c URI undefine NAME`);
    expect(orphans.message).not.toContain('foreign-');
    // Reported, not touched: still there and still running.
    const domains = await bench.domains(A);
    expect(domains.find((d) => d.uuid === lost.uuid)?.state).toBe('running');
    expect(domains.some((d) => d.uuid === foreignUuid)).toBe(true);
    // The rest of the pool is as usual.
    expect(current.status?.readyHosts).toBe(2);
    expect(condition(current, 'Degraded')).toMatchObject({ status: 'False' });

    expect(await orphanGauge(A)).toBe(1);
    expect(await orphanGauge(B)).toBe(0);
    await eventually(
      async () => (await poolEvents()).some((e) => e.reason === 'OrphanDomainsFound'),
      10_000,
      'the OrphanDomainsFound Event',
    );
    const event = (await poolEvents()).find((e) => e.reason === 'OrphanDomainsFound')!;
    expect(event.type).toBe('Warning');
    expect(event.message).toContain(`orph-a (${bench.hostUri(A)}): ${lost.name}`);
  });

  it('never counts the domains of VirtualMachines, while they run or after a normal deletion', async () => {
    await bench.createVm('web', pool);
    const vm = await bench.untilVm('web', isRunning, 'Running');
    const host = vm.status?.host === A.name ? A : B;
    expect((await bench.domains(host)).map((d) => d.uuid)).toContain(vm.metadata.uid);

    // A new orphan on B, seen through its domain event (no periodic scan is due for minutes):
    // the scan that finds it also lists the VM's domain, and must not count it.
    late = orphanXml('late');
    await bench.hypervisor(B).ensureDefined(late.xml);
    const current = await bench.untilPool(
      pool,
      (p) => (p.status?.hosts ?? []).every((h) => h.orphanDomains === 1),
      'one orphan on each host',
    );
    expect(condition(current, 'OrphanDomains')?.message).toContain(
      `2 domains with virtfleet's marker but no VirtualMachine: orph-a (${bench.hostUri(A)}): ${lost.name}; orph-b (${bench.hostUri(B)}): ${late.name}.`,
    );
    expect(await orphanGauge(B)).toBe(1);

    // Deleting the VM asks for a scan of its host; the domain went before the object, so that
    // scan finds nothing new.
    const before = await scans();
    await bench.kube.delete(
      {
        kind: 'VirtualMachine',
        group: 'virtfleet.io',
        version: 'v1alpha1',
        plural: 'virtualmachines',
        namespaced: true,
      },
      bench.namespace,
      'web',
    );
    await bench.until(() => bench.vm('web') === undefined, 30_000, 'web to be gone');
    await eventually(async () => (await scans()) > before, 10_000, 'a scan after the deletion');
    expect((await bench.domains(host)).map((d) => d.uuid)).not.toContain(vm.metadata.uid);
    expect(bench.pool(pool)?.status?.hosts?.map((h) => [h.name, h.orphanDomains])).toEqual([
      ['orph-a', 1],
      ['orph-b', 1],
    ]);
  });

  it('removes a domain of a VM it deleted that shows up after the deletion (a start sent by a killed controller)', async () => {
    await bench.createVm('gone', pool);
    const vm = await bench.untilVm('gone', isRunning, 'Running');
    const uid = vm.metadata.uid!;
    const host = vm.status?.host === A.name ? A : B;
    const xml = await bench.hypervisor(host).xml(uid);
    await bench.kube.delete(
      {
        kind: 'VirtualMachine',
        group: 'virtfleet.io',
        version: 'v1alpha1',
        plural: 'virtualmachines',
        namespaced: true,
      },
      bench.namespace,
      'gone',
    );
    await bench.until(() => bench.vm('gone') === undefined, 30_000, 'gone to be gone');
    // The define and start land after the deletion let the VM go.
    await bench.hypervisor(host).ensureDefined(xml);
    await bench.hypervisor(host).start(uid);
    await eventually(
      async () => !(await bench.domains(host)).some((d) => d.uuid === uid),
      30_000,
      'the leftover domain removed',
    );
    await eventually(
      async () =>
        (await poolEvents()).some(
          (e) => e.reason === 'LeftoverDomainRemoved' && (e.message ?? '').includes(`${bench.namespace}/gone`),
        ),
      10_000,
      'the LeftoverDomainRemoved Event',
    );
    // The other orphans, of VMs this process never deleted, are still only reported.
    expect(bench.pool(pool)?.status?.hosts?.map((h) => [h.name, h.orphanDomains])).toEqual([
      ['orph-a', 1],
      ['orph-b', 1],
    ]);
    expect((await bench.domains(A)).some((d) => d.uuid === lost.uuid)).toBe(true);
  });

  it('keeps a deleted VM until its Deleted Event is written: the record a later controller relies on', async () => {
    const VM = {
      kind: 'VirtualMachine',
      group: 'virtfleet.io',
      version: 'v1alpha1',
      plural: 'virtualmachines',
      namespaced: true,
    };
    const EVENT = { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true };
    const POLICY = {
      kind: 'ValidatingAdmissionPolicy',
      group: 'admissionregistration.k8s.io',
      version: 'v1',
      plural: 'validatingadmissionpolicies',
      namespaced: false,
    };
    const BINDING = {
      ...POLICY,
      kind: 'ValidatingAdmissionPolicyBinding',
      plural: 'validatingadmissionpolicybindings',
    };
    const policy = `no-events-${bench.namespace}`;
    await bench.createVm('recorded', pool);
    const vm = await bench.untilVm('recorded', isRunning, 'Running');
    // The API server refuses every new Event in the namespace (an admission policy: Event quotas
    // are not enforced).
    await bench.kube.create(POLICY, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: policy },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['events'] }],
        },
        validations: [{ expression: 'false', message: 'no Events in this test' }],
      },
    } as KubeObject);
    await bench.kube.create(BINDING, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: policy },
      spec: {
        policyName: policy,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': bench.namespace } } },
      },
    } as KubeObject);
    try {
      // The policy takes effect within a few seconds: until a probe Event is refused.
      await eventually(
        () =>
          bench.kube
            .create(EVENT, {
              apiVersion: 'v1',
              kind: 'Event',
              metadata: { generateName: 'probe-', namespace: bench.namespace },
              involvedObject: { kind: 'VirtualMachine', namespace: bench.namespace, name: 'recorded' },
              reason: 'Probe',
              message: 'probe',
            } as KubeObject)
            .then(
              () => false,
              () => true,
            ),
        30_000,
        'the admission policy refusing Events',
      );
      await bench.kube.delete(VM, bench.namespace, 'recorded');
      const waiting = await bench.untilVm(
        'recorded',
        (v) => (condition(v, 'Ready')?.message ?? '').startsWith("cannot write the VM's Deleted Event yet"),
        'the deletion waiting for its Deleted Event',
      );
      expect(waiting.metadata.finalizers).toContain('virtfleet.io/domain');
      const message = condition(waiting, 'Ready')?.message ?? '';
      expect(message).toContain('no Events in this test'); // the API server's reason
      expect(message).toMatch(
        /; the finalizer stays until it is written, so that a later controller can recognise a domain of this VM that shows up late$/,
      );
    } finally {
      await bench.kube.delete(BINDING, undefined, policy);
      await bench.kube.delete(POLICY, undefined, policy);
    }
    await bench.until(() => bench.vm('recorded') === undefined, 30_000, 'recorded to be gone');
    const events = await bench.kube.list<EventObject>(EVENT, {
      namespace: bench.namespace,
      fieldSelector: `involvedObject.uid=${vm.metadata.uid ?? ''},reason=Deleted`,
    });
    expect(events.items.map((e) => e.message)).toEqual([
      'no copy of the domain is left on the hosts that answered; the VM goes',
    ]);
  });

  it('removes a domain of a VM an earlier controller process deleted, as its Deleted Event records', async () => {
    // A VM this process never saw: only the Event an earlier process wrote before it let the VM go.
    const earlier = orphanXml('deleted-earlier');
    await bench.kube.create(
      { kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true },
      {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `deleted-earlier.${earlier.uuid.slice(0, 8)}`, namespace: bench.namespace },
        involvedObject: {
          apiVersion: 'virtfleet.io/v1alpha1',
          kind: 'VirtualMachine',
          namespace: bench.namespace,
          name: 'deleted-earlier',
          uid: earlier.uuid,
        },
        reason: 'Deleted',
        message: 'no copy of the domain is left on the hosts that answered; the VM goes',
        type: 'Normal',
        source: { component: 'virtfleet-controller' },
        firstTimestamp: new Date().toISOString(),
        lastTimestamp: new Date().toISOString(),
        count: 1,
      },
    );
    await bench.hypervisor(A).ensureDefined(earlier.xml);
    await bench.hypervisor(A).start(earlier.uuid);
    await eventually(
      async () => !(await bench.domains(A)).some((d) => d.uuid === earlier.uuid),
      30_000,
      'the leftover of the earlier deletion removed',
    );
    // The orphans of VMs nobody deleted are still only reported.
    expect((await bench.domains(A)).some((d) => d.uuid === lost.uuid)).toBe(true);
    expect(hostEntry(A)?.orphanDomains).toBe(1);
  });

  it('names the first ten orphans in the condition and counts the rest', async () => {
    const many = Array.from({ length: 11 }, (_, i) => orphanXml(`many-${String(i).padStart(2, '0')}`));
    for (const domain of many) await bench.hypervisor(B).ensureDefined(domain.xml);
    const current = await bench.untilPool(pool, () => hostEntry(B)?.orphanDomains === 12, 'twelve orphans on orph-b');
    const message = condition(current, 'OrphanDomains')?.message ?? '';
    expect(message).toContain('13 domains with virtfleet');
    // A's one, then B's by name (…_late before …_many-00): many-08 to many-10 are not named.
    const named = [lost.name, late.name, ...many.slice(0, 8).map((d) => d.name)];
    expect(message).toContain(
      `orph-a (${bench.hostUri(A)}): ${named[0]}; orph-b (${bench.hostUri(B)}): ${named.slice(1).join(', ')}, and 3 more.`,
    );
    expect(await orphanGauge(B)).toBe(12);
    const undefineAll = many.map((domain) => bench.hypervisor(B).undefine(domain.uuid));
    await Promise.all(undefineAll);
    await bench.untilPool(pool, () => hostEntry(B)?.orphanDomains === 1, 'back to one orphan on orph-b');
  });

  it('clears the report once the orphans are removed from their hosts', async () => {
    const hostA = bench.hypervisor(A);
    await hostA.destroy(lost.uuid);
    await hostA.undefine(lost.uuid);
    await bench.hypervisor(B).undefine(late.uuid);

    const current = await bench.untilPool(
      pool,
      (p) => condition(p, 'OrphanDomains')?.status === 'False',
      'OrphanDomains=False',
    );
    expect(condition(current, 'OrphanDomains')).toMatchObject({ reason: 'NoOrphanDomains' });
    expect(current.status?.hosts?.map((h) => h.orphanDomains)).toEqual([0, 0]);
    expect(await orphanGauge(A)).toBe(0);
    expect(await orphanGauge(B)).toBe(0);
    await eventually(
      async () =>
        (await poolEvents()).some(
          (e) => e.reason === 'OrphanDomainsGone' && e.type === 'Normal' && (e.message ?? '').includes(lost.name),
        ),
      10_000,
      'the OrphanDomainsGone Event naming lost',
    );
    // The foreign domain was never ours to report, nor to remove.
    expect((await bench.domains(A)).map((d) => d.uuid)).toEqual([foreignUuid]);
    // The pool object itself is untouched by all this: only status moved.
    const object = await bench.kube.get(HOST_POOL, undefined, pool);
    expect(object.metadata?.generation).toBe(1);
  });
});
