// The effective spec of a VM with a VirtualMachineTemplate (src/controllers/template/merge.ts):
// the VM's own fields win, named lists merge by name with the template's order first, whole
// objects are taken whole, the fields taken are listed, and a merge that breaks an API rule or
// lacks memory is refused naming the field.
import { describe, expect, it } from '@jest/globals';
import type { RawVirtualMachineSpec } from '../../src/api/virtualmachine.js';
import type { VirtualMachineTemplateSpec } from '../../src/api/virtualmachinetemplate.js';
import { DEFAULT_CPU, mergeTemplate } from '../../src/controllers/template/merge.js';
import { namedWithTemplate } from '../../src/controllers/template/vm-status.js';

const base = {
  hostPoolRef: { name: 'lab' },
  hypervisor: 'auto',
  workload: 'general',
  runStrategy: 'Always',
  firmware: { type: 'bios', secureBoot: false },
  recovery: { restartBackoff: { initialSeconds: 1, maxSeconds: 300 }, evacuate: true, priority: 0 },
} as const;
const raw = (extra: object) => ({ ...base, ...extra }) as unknown as RawVirtualMachineSpec;
const disk = (name: string, extra: object = {}) => ({
  name,
  type: 'disk',
  bus: 'virtio',
  readOnly: false,
  retain: false,
  source: { blank: {} },
  size: '1Gi',
  ...extra,
});
const tpl = (spec: object) => ({ name: 'small', spec: spec as VirtualMachineTemplateSpec });

describe('mergeTemplate', () => {
  it('without a template: the VM as written, cpu defaulted to one core', () => {
    const merged = mergeTemplate(raw({ memory: '1Gi' }), undefined);
    expect(merged).toMatchObject({ ok: true, fields: [] });
    expect(merged.spec.cpu).toEqual(DEFAULT_CPU);
    expect(merged.spec.memory).toBe('1Gi');
  });

  it("takes what the VM does not set and keeps the VM's own fields", () => {
    const merged = mergeTemplate(
      raw({ memory: '2Gi' }),
      tpl({ memory: '1Gi', cpu: { cores: 2, sockets: 1, threads: 1 }, graphics: { type: 'vnc' } }),
    );
    expect(merged).toMatchObject({ ok: true, fields: ['spec.cpu', 'spec.graphics'] });
    expect(merged.spec).toMatchObject({ memory: '2Gi', cpu: { cores: 2 }, graphics: { type: 'vnc' } });
  });

  it("merges disks and networks by name: the template's order, a VM entry in its place, then the VM's others", () => {
    const merged = mergeTemplate(
      raw({
        disks: [disk('data'), disk('root', { size: '20Gi' })],
        networks: [{ name: 'nic1', model: 'virtio' }],
      }),
      tpl({
        memory: '1Gi',
        disks: [disk('root'), disk('swap')],
        networks: [{ name: 'nic0', model: 'virtio' }],
      }),
    );
    if (!merged.ok) throw new Error(merged.message);
    expect(merged.spec.disks?.map((d) => [d.name, d.size])).toEqual([
      ['root', '20Gi'],
      ['swap', '1Gi'],
      ['data', '1Gi'],
    ]);
    expect(merged.spec.networks?.map((n) => n.name)).toEqual(['nic0', 'nic1']);
    expect(merged.fields).toEqual(['spec.memory', 'spec.disks[swap]', 'spec.networks[nic0]']);
  });

  it('takes cloudInit and install whole: a VM that sets one keeps all of its own', () => {
    const merged = mergeTemplate(
      raw({ memory: '1Gi', cloudInit: { userData: '#cloud-config\n{}\n', bus: 'virtio' } }),
      tpl({ cloudInit: { userData: '#cloud-config\nhostname: x\n', networkConfig: 'version: 2\n', bus: 'virtio' } }),
    );
    expect(merged.spec.cloudInit).toEqual({ userData: '#cloud-config\n{}\n', bus: 'virtio' });
    expect(merged).toMatchObject({ ok: true, fields: [] });
  });

  it('does not share objects with the template (a later change of one is not a change of the other)', () => {
    const template = tpl({ memory: '1Gi', disks: [disk('root')] });
    const merged = mergeTemplate(raw({}), template);
    merged.spec.disks![0]!.size = '9Gi';
    expect((template.spec.disks as Array<{ size: string }>)[0]!.size).toBe('1Gi');
  });

  it('refuses a merge without memory, or one that breaks an API rule, naming the field', () => {
    const none = mergeTemplate(raw({}), tpl({ cpu: { cores: 2, sockets: 1, threads: 1 } }));
    expect(none).toMatchObject({
      ok: false,
      message: 'spec.memory: neither the VM nor VirtualMachineTemplate small sets it; set it in either',
    });
    const clash = mergeTemplate(
      raw({ disks: [disk('data', { bootOrder: 1 })] }),
      tpl({ memory: '1Gi', disks: [disk('root', { bootOrder: 1 })] }),
    );
    expect(clash.ok).toBe(false);
    if (!clash.ok) expect(clash.message).toMatch(/spec\.disks: disks\[\]\.bootOrder values must be unique/);
    const missing = mergeTemplate(raw({}), undefined, 'spec.templateRef.name: no VirtualMachineTemplate x');
    expect(missing).toMatchObject({ ok: false, message: 'spec.templateRef.name: no VirtualMachineTemplate x' });
  });
});

describe('namedWithTemplate', () => {
  it('names the template beside the RestartRequired fields it gave', () => {
    const use = { state: 'taken' as const, name: 'small', generation: 2, fields: ['spec.cpu', 'spec.disks[root]'] };
    expect(namedWithTemplate(['spec.memory', 'spec.cpu', 'spec.disks'], use)).toEqual([
      'spec.memory',
      'spec.cpu (from template small)',
      'spec.disks (from template small)',
    ]);
    expect(namedWithTemplate(['spec.cpu'], { state: 'none' })).toEqual(['spec.cpu']);
  });
});
