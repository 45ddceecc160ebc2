// VirtualMachineTemplates on a real kube-apiserver with the controllers over libvirt test:///
// hosts: a VM that names a template runs with the template's memory, cpu and root disk (its
// domain says so) and says what it took in status.template; a VM's own fields win; a template
// change reaches a running VM only as RestartRequired naming the fields and the template, never
// as a restart; a missing template and a VM and template that clash once merged are refused in
// Provisioned naming the field, and a template in use waits for its VMs before it goes. And the
// effective view itself: every handler gets a template change as the same old and new merge.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { VIRTUAL_MACHINE_TEMPLATE } from '../../../src/controllers/template/resource.js';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { child, parseXml } from '../../../src/hypervisors/xml.js';
import { EffectiveVms, type RawVmObject } from '../../../src/controllers/template/effective-vms.js';
import type { TemplateObject } from '../../../src/controllers/template/resource.js';
import { Cache } from '../../../src/runtime/cache.js';
import type { InformerEvent } from '../../../src/runtime/informer.js';
import type { KubeObject } from '../../../src/runtime/kube-client.js';
import type { VmObject } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'tpl-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };
const bench = new ControllerBench('vm-templates', { hostRetryMs: 1_000 });
let pool: string;

type TemplateLike = KubeObject & {
  spec: Record<string, unknown>;
  status?: { usedBy?: string[]; usedByCount?: number };
};

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('tpl', [HOST], {
    storage: { pool: 'vf-templates', path: `${bench.hosts.dir}/templates` },
  });
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  const templates = await bench.kube.list<TemplateLike>(VIRTUAL_MACHINE_TEMPLATE, { namespace: bench.namespace });
  for (const template of templates.items)
    await bench.kube
      .delete(VIRTUAL_MACHINE_TEMPLATE, bench.namespace, template.metadata?.name ?? '')
      .catch(() => undefined);
  await bench.close();
});

function createTemplate(name: string, spec: Record<string, unknown>): Promise<TemplateLike> {
  return bench.kube.create<TemplateLike>(VIRTUAL_MACHINE_TEMPLATE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineTemplate',
    metadata: { name, namespace: bench.namespace },
    spec,
  });
}

function template(name: string): Promise<TemplateLike> {
  return bench.kube.get<TemplateLike>(VIRTUAL_MACHINE_TEMPLATE, bench.namespace, name);
}

/** Polls the API server (no informer here covers templates) until `check` holds; fails naming `what`. */
async function untilTemplate(
  name: string,
  check: (t: TemplateLike | undefined) => boolean,
  what: string,
): Promise<TemplateLike | undefined> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await template(name).catch(() => undefined);
    if (check(found)) return found;
    if (Date.now() > deadline) throw new Error(`${name}: ${what} (last: ${JSON.stringify(found)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A VM of the bench that sets no memory: it comes from the template. */
function createFromTemplate(name: string, templateName: string, spec: Record<string, unknown> = {}) {
  return bench.kube.create(VIRTUAL_MACHINE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: bench.namespace },
    spec: {
      hostPoolRef: { name: pool },
      kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
      templateRef: { name: templateName },
      ...spec,
    },
  });
}

async function domainOf(name: string): Promise<{ memoryKiB: number; vcpus: number; disks: number; xml: string }> {
  const xml = await bench.hypervisor(HOST).xml(bench.vm(name)!.metadata.uid!, { inactive: true });
  const domain = parseXml(xml);
  return {
    memoryKiB: Number(child(domain, 'memory')?.text),
    vcpus: Number(child(domain, 'vcpu')?.text),
    disks: (xml.match(/<disk /g) ?? []).length,
    xml,
  };
}

const SMALL = {
  memory: '256Mi',
  cpu: { cores: 2 },
  disks: [{ name: 'root', size: '64Mi', source: { blank: {} } }],
};

describe('VirtualMachineTemplate', () => {
  it('refuses a VM that sets no memory and names no template, at the field', async () => {
    await expect(
      bench.kube.create(VIRTUAL_MACHINE, {
        apiVersion: 'virtfleet.io/v1alpha1',
        kind: 'VirtualMachine',
        metadata: { name: 'bare', namespace: bench.namespace },
        spec: { hostPoolRef: { name: pool } },
      }),
    ).rejects.toThrow(/spec\.memory: .*set memory \(e\.g\. 1Gi\), or name a VirtualMachineTemplate/);
  });

  it('gives a VM the memory, cpu and root disk of its template, and says so in status.template', async () => {
    await createTemplate('small', SMALL);
    await createFromTemplate('stamped', 'small');
    const vm = await bench.untilVm('stamped', isRunning, 'Running');
    expect(vm.status?.template).toEqual({
      name: 'small',
      generation: 1,
      fields: ['spec.memory', 'spec.cpu', 'spec.disks[root]'],
      effective: { memory: '256Mi', vcpus: 2 },
    });
    // The spec as written is untouched: the merge is the controller's view, never written back.
    const stored = await bench.kube.get<KubeObject & { spec: Record<string, unknown> }>(
      VIRTUAL_MACHINE,
      bench.namespace,
      'stamped',
    );
    expect(stored.spec.memory).toBeUndefined();
    expect(stored.spec.disks).toBeUndefined();
    const domain = await domainOf('stamped');
    expect(domain).toMatchObject({ memoryKiB: 256 * 1024, vcpus: 2, disks: 1 });
    expect(domain.xml).toContain('_stamped_root');
    await untilTemplate('small', (t) => t?.status?.usedByCount === 1, 'usedBy stamped');
    expect((await template('small')).status).toMatchObject({ usedBy: ['stamped'], usedByCount: 1 });
  });

  it("lets the VM's own fields win: its memory and a disk of the same name", async () => {
    await createFromTemplate('own', 'small', {
      memory: '512Mi',
      disks: [{ name: 'root', size: '128Mi', source: { blank: {} } }],
    });
    const vm = await bench.untilVm('own', isRunning, 'Running');
    expect(vm.status?.template).toEqual({
      name: 'small',
      generation: 1,
      fields: ['spec.cpu'],
      effective: { memory: '512Mi', vcpus: 2 },
    });
    expect(await domainOf('own')).toMatchObject({ memoryKiB: 512 * 1024, vcpus: 2, disks: 1 });
    const root = await bench.hypervisor(HOST).volume('vf-templates', `vf-${bench.namespace}_own_root`);
    expect(root?.capacityBytes).toBe(128 * 2 ** 20);
  });

  it('reaches a running VM as RestartRequired naming the field and the template, without a restart', async () => {
    const before = bench.vm('stamped')!;
    const started = condition(before, 'Ready')?.lastTransitionTime;
    await bench.kube.patch(VIRTUAL_MACHINE_TEMPLATE, bench.namespace, 'small', { spec: { cpu: { cores: 4 } } });
    const vm = await bench.untilVm(
      'stamped',
      (v) => condition(v, 'RestartRequired')?.status === 'True' && v.status?.template?.generation === 2,
      'RestartRequired after the template change',
    );
    expect(condition(vm, 'RestartRequired')?.message).toMatch(/^spec\.cpu \(from template small\) changed/);
    expect(vm.status?.template?.effective).toEqual({ memory: '256Mi', vcpus: 4 });
    // Still the same run of the domain: Ready did not go False and back, no restart counted.
    expect(isRunning(vm)).toBe(true);
    expect(condition(vm, 'Ready')?.lastTransitionTime).toBe(started);
    expect(vm.status?.restarts ?? 0).toBe(0);
    const running = (await bench.domains(HOST)).find((d) => d.uuid === vm.metadata.uid);
    expect(running?.state).toBe('running');
    // The next definition has it; the running one does not.
    expect((await domainOf('stamped')).vcpus).toBe(4);
    const live = parseXml(await bench.hypervisor(HOST).xml(vm.metadata.uid!));
    expect(Number(child(live, 'vcpu')?.text)).toBe(2);
    // The other VM took its cpu from the template too.
    const own = await bench.untilVm(
      'own',
      (v) => condition(v, 'RestartRequired')?.status === 'True',
      'RestartRequired on the other VM',
    );
    expect(condition(own, 'RestartRequired')?.message).toMatch(/spec\.cpu \(from template small\)/);
  });

  it('refuses a VM whose template is missing, naming the field, and goes on once it exists', async () => {
    await createFromTemplate('waiting', 'later');
    const vm = await bench.untilVm(
      'waiting',
      (v) => condition(v, 'Provisioned')?.reason === 'TemplateNotFound',
      'Provisioned TemplateNotFound',
    );
    expect(condition(vm, 'Provisioned')).toMatchObject({
      status: 'False',
      message: `spec.templateRef.name: no VirtualMachineTemplate later in namespace ${bench.namespace}; create it or fix the name`,
    });
    expect(vm.status?.host).toBeUndefined();
    // A template applied after the VM is found by itself: reconciling, not waiting for a person.
    expect(condition(vm, 'Stalled')).toBeUndefined();
    expect((await bench.events('waiting')).some((e) => e.type === 'Warning' && e.reason === 'TemplateNotFound')).toBe(
      true,
    );
    await createTemplate('later', { memory: '128Mi' });
    const running = await bench.untilVm('waiting', isRunning, 'Running once the template exists');
    expect(running.status?.template?.fields).toEqual(['spec.memory']);
  });

  it('refuses a VM and a template that break a rule once merged, naming the field', async () => {
    await createTemplate('boots', {
      memory: '128Mi',
      disks: [{ name: 'root', size: '64Mi', bootOrder: 1, source: { blank: {} } }],
    });
    await createFromTemplate('clash', 'boots', {
      disks: [{ name: 'data', size: '64Mi', bootOrder: 1, source: { blank: {} } }],
    });
    const vm = await bench.untilVm(
      'clash',
      (v) => condition(v, 'Provisioned')?.reason === 'TemplateInvalid',
      'Provisioned TemplateInvalid',
    );
    expect(condition(vm, 'Provisioned')?.message).toMatch(
      /^the VM with VirtualMachineTemplate boots merged is not valid: spec\.disks: disks\[\]\.bootOrder values must be unique; fix the VM or the template$/,
    );
    // It waits for a person (kstatus: Failed), and the template says which of its VMs cannot take it.
    expect(condition(vm, 'Stalled')?.status).toBe('True');
    const boots = await untilTemplate(
      'boots',
      (t) =>
        (t?.status as { conditions?: { type: string; reason: string }[] } | undefined)?.conditions?.some(
          (c) => c.type === 'Ready' && c.reason === 'VmsRefused',
        ) ?? false,
      'Ready VmsRefused',
    );
    expect(JSON.stringify(boots?.status)).toContain('1 of 1 VirtualMachines cannot take it; VM clash: ');
  });

  it('keeps a template its VMs name until they are gone', async () => {
    await bench.kube.delete(VIRTUAL_MACHINE_TEMPLATE, bench.namespace, 'small');
    const held = (await untilTemplate('small', (t) => t?.status?.usedByCount === 2, 'usedBy both'))!;
    expect(held.metadata?.deletionTimestamp).toBeDefined();
    expect(held.metadata?.finalizers).toContain('virtfleet.io/template-in-use');
    expect(held.status).toMatchObject({ usedBy: ['own', 'stamped'], usedByCount: 2 });
    // The VMs still run from it.
    expect(isRunning(bench.vm('stamped')!)).toBe(true);
    for (const name of ['stamped', 'own']) await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, name);
    await bench.until(() => !bench.vm('stamped') && !bench.vm('own'), 60_000, 'both VMs deleted');
    await untilTemplate('small', (t) => t === undefined, 'the template gone');
  });
});

describe('the effective view of the VMs', () => {
  it('gives every handler a template change as the same update: the old merge, then the new', async () => {
    const cache = new Cache(bench.kube, bench.logs.logger);
    const raw = cache.informerFor<RawVmObject>(VIRTUAL_MACHINE, { namespace: bench.namespace });
    const templates = cache.informerFor<TemplateObject>(VIRTUAL_MACHINE_TEMPLATE, { namespace: bench.namespace });
    const view = new EffectiveVms(bench.kube, bench.logs.logger, raw, templates);
    const seen: Array<Array<[string, string]>> = [[], []];
    for (const list of seen)
      view.on((event: InformerEvent<VmObject>) => {
        if (event.type === 'update' && event.object.metadata.name === 'viewed')
          list.push([event.old.spec.memory, event.object.spec.memory]);
      });
    const stop = new AbortController();
    const running = cache.run(stop.signal);
    try {
      await cache.waitForSync();
      await createTemplate('view', { memory: '128Mi' });
      await createFromTemplate('viewed', 'view');
      await bench.until(() => view.get(`${bench.namespace}/viewed`)?.spec.memory === '128Mi', 30_000, 'viewed merged');
      await bench.kube.patch(VIRTUAL_MACHINE_TEMPLATE, bench.namespace, 'view', { spec: { memory: '192Mi' } });
      const deadline = Date.now() + 30_000;
      while (!seen.every((list) => list.some(([, now]) => now === '192Mi')) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      for (const list of seen) expect(list.find(([, now]) => now === '192Mi')).toEqual(['128Mi', '192Mi']);
      expect(view.templateUse(view.get(`${bench.namespace}/viewed`)!)).toMatchObject({
        state: 'taken',
        name: 'view',
        generation: 2,
        fields: ['spec.memory'],
      });
    } finally {
      stop.abort();
      await running;
      await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'viewed');
    }
  });
});
