// A VM's effective spec: its own fields over those of the VirtualMachineTemplate it names in
// spec.templateRef. The VM wins field by field; disks and networks merge by name (the template's
// entries in their order, a VM entry of the same name in its place, then the VM's other entries),
// so a template's root disk stays the first disk; cloudInit, install and graphics are taken whole.
// The merged spec is checked with the API server's own rules (validateObject, the TypeScript twins
// of the CRD's CEL), so a template and a VM that are each valid but clash are reported at the field.
import { validateObject } from '../../api/validate.js';
import { DEFAULT_CPU, type RawVirtualMachineSpec, type VirtualMachineSpec } from '../../api/virtualmachine.js';
import type { VirtualMachineTemplateSpec } from '../../api/virtualmachinetemplate.js';

export { DEFAULT_CPU };

export type Merged =
  | {
      ok: true;
      spec: VirtualMachineSpec;
      /** The spec fields that came from the template: spec.memory, spec.disks[root], … */
      fields: string[];
    }
  | { ok: false; spec: VirtualMachineSpec; message: string };

type Named = { name: string };

function byName<T extends Named>(
  field: string,
  own: readonly T[] | undefined,
  template: readonly T[] | undefined,
  taken: string[],
): T[] | undefined {
  if (!template?.length) return own ? [...own] : undefined;
  const mine = new Map((own ?? []).map((entry) => [entry.name, entry]));
  const merged = template.map((entry) => {
    const replaced = mine.get(entry.name);
    if (replaced) return replaced;
    taken.push(`${field}[${entry.name}]`);
    return structuredClone(entry);
  });
  const fromTemplate = new Set(template.map((entry) => entry.name));
  return [...merged, ...(own ?? []).filter((entry) => !fromTemplate.has(entry.name))];
}

/**
 * The effective spec of a VM. `template` is undefined when the VM names none; `templateName` is
 * used in messages. A VM naming a template that cannot be had gets `missing` as the reason.
 */
export function mergeTemplate(
  raw: RawVirtualMachineSpec,
  template: { name: string; spec: VirtualMachineTemplateSpec } | undefined,
  missing?: string,
): Merged {
  const fields: string[] = [];
  const from = template?.spec;
  const take = <K extends 'cloudInit' | 'install' | 'graphics'>(key: K): RawVirtualMachineSpec[K] => {
    if (raw[key] !== undefined || from?.[key] === undefined) return raw[key];
    fields.push(`spec.${key}`);
    return structuredClone(from[key]) as RawVirtualMachineSpec[K];
  };
  const memory = raw.memory ?? from?.memory;
  if (raw.memory === undefined && from?.memory !== undefined) fields.push('spec.memory');
  const cpu = raw.cpu ?? (from?.cpu ? structuredClone(from.cpu) : undefined);
  if (raw.cpu === undefined && from?.cpu !== undefined) fields.push('spec.cpu');
  const disks = byName('spec.disks', raw.disks, from?.disks, fields);
  const networks = byName('spec.networks', raw.networks, from?.networks, fields);
  const cloudInit = take('cloudInit');
  const install = take('install');
  const graphics = take('graphics');
  const spec: VirtualMachineSpec = {
    ...raw,
    cpu: cpu ?? { ...DEFAULT_CPU },
    // Only a VM whose template is missing or sets no memory lacks it: it is refused below and
    // never placed, so this value never reaches a host or the capacity count of one.
    memory: memory ?? '0',
    ...(disks ? { disks } : {}),
    ...(networks ? { networks } : {}),
    ...(cloudInit ? { cloudInit } : {}),
    ...(install ? { install } : {}),
    ...(graphics ? { graphics } : {}),
  };
  if (missing !== undefined) return { ok: false, spec, message: missing };
  if (memory === undefined)
    return {
      ok: false,
      spec,
      message: `spec.memory: neither the VM nor VirtualMachineTemplate ${template?.name ?? '?'} sets it; set it in either`,
    };
  if (!template) return { ok: true, spec, fields };
  const problems = validateObject({
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'merged' },
    spec,
  });
  if (problems.length > 0) {
    const said = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    return {
      ok: false,
      spec,
      message: `the VM with VirtualMachineTemplate ${template.name} merged is not valid: ${said}; fix the VM or the template`,
    };
  }
  return { ok: true, spec, fields };
}
