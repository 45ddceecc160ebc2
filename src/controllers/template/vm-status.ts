// What the VM controller says about a VM's template: status.template (name, generation, the
// fields taken and the effective size), a refusal in Provisioned (the template is missing, or the
// VM and the template merged break a rule of the API), and the RestartRequired fields named with
// the template they came from.
import { vmResources } from '../allocations.js';
import { VM_CONDITIONS as C, VM_REASONS as R } from '../reasons.js';
import type { VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { TemplateUse } from './effective-vms.js';

const REFUSED: ReadonlySet<string> = new Set([R.TemplateNotFound, R.TemplateInvalid]);

/**
 * Writes status.template; returns false (Provisioned=False, a Warning Event on a new refusal)
 * when the VM cannot go on.
 */
export function reportTemplate(
  vm: VmObject,
  use: TemplateUse,
  draft: VmStatusDraft,
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => void,
): boolean {
  if (use.state === 'none') {
    delete draft.status.template;
    return true;
  }
  if (use.state === 'failed') {
    const before = draft.condition(C.Provisioned);
    draft.set(C.Provisioned, 'False', use.reason, use.message);
    if (before?.reason !== use.reason || before.message !== use.message) event('Warning', use.reason, use.message);
    return false;
  }
  const { vcpus } = vmResources(vm.spec);
  draft.status.template = {
    name: use.name,
    generation: use.generation,
    fields: use.fields.slice(0, 64),
    effective: { memory: vm.spec.memory, vcpus },
  };
  // The steps after this one say what Provisioned is now.
  if (REFUSED.has(draft.condition(C.Provisioned)?.reason ?? '')) draft.drop(C.Provisioned);
  return true;
}

/** `spec.memory` → `spec.memory (from template small)` for the fields the template gave. */
export function namedWithTemplate(fields: string[], use: TemplateUse | undefined): string[] {
  if (use?.state !== 'taken') return fields;
  return fields.map((field) =>
    use.fields.some((taken) => taken === field || taken.startsWith(`${field}[`))
      ? `${field} (from template ${use.name})`
      : field,
  );
}
