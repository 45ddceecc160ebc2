// The VirtualMachineTemplate controller: a template that VMs name keeps the finalizer
// virtfleet.io/template-in-use, so deleting it waits until no VM of its namespace names it (a VM's
// effective spec never loses its source); status.usedBy lists those VMs, and Ready says whether
// each of them can take it (merged as its controller merges it), Stalled beside a False one. It
// reads the VMs as written (spec.templateRef), not their effective specs.
import { Controller } from '../../runtime/controller.js';
import { addFinalizer, isBeingDeleted, removeFinalizer } from '../../runtime/finalizers.js';
import type { Informer } from '../../runtime/informer.js';
import { isConflict, isNotFound, type KubeClient } from '../../runtime/kube-client.js';
import type { ReconcileContext, Reconciler } from '../../runtime/reconciler.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { watchMapped, watchOwn } from '../../runtime/sources.js';
import type { Logger } from '../../observability/logging.js';
import { setCondition } from '../../runtime/conditions.js';
import { withKstatusConditions, type KstatusVerdict } from '../kstatus.js';
import type { RawVmObject } from './effective-vms.js';
import { mergeTemplate } from './merge.js';
import { TEMPLATE_FINALIZER, VIRTUAL_MACHINE_TEMPLATE, type TemplateObject } from './resource.js';

const MAX_LISTED = 100;

export interface TemplateControllerOptions {
  client: KubeClient;
  templates: Informer<TemplateObject>;
  vms: Informer<RawVmObject>;
  logger: Logger;
}

/** The VMs of the template's namespace that name it, by name. */
export function templateUsers(template: TemplateObject, vms: Informer<RawVmObject>): string[] {
  const { namespace, name } = template.metadata;
  return vms
    .list()
    .filter((vm) => vm.metadata.namespace === namespace && vm.spec.templateRef?.name === name)
    .map((vm) => vm.metadata.name ?? '')
    .sort();
}

class TemplateReconciler implements Reconciler {
  constructor(private readonly options: TemplateControllerOptions) {}

  async reconcile({ key }: ReconcileContext): Promise<void> {
    const { client, templates, vms } = this.options;
    const template = templates.get(key);
    if (!template) return;
    const users = templateUsers(template, vms);
    const generation = template.metadata.generation ?? 0;
    // Each VM that names it, merged with it as its controller will (template/merge.ts).
    const refused = users.flatMap((name) => {
      const vm = vms.get(`${template.metadata.namespace ?? ''}/${name}`);
      if (!vm) return [];
      const merged = mergeTemplate(vm.spec, { name: template.metadata.name ?? '', spec: template.spec });
      return merged.ok ? [] : [{ name, message: merged.message }];
    });
    const now = new Date();
    const ready =
      refused.length === 0
        ? {
            type: 'Ready',
            status: 'True' as const,
            reason: 'Valid',
            message: `used by ${users.length} VirtualMachine${users.length === 1 ? '' : 's'}`,
          }
        : {
            type: 'Ready',
            status: 'False' as const,
            reason: 'VmsRefused',
            message:
              `${refused.length} of ${users.length} VirtualMachines cannot take it; VM ${refused[0]!.name}: ${refused[0]!.message}`.slice(
                0,
                1024,
              ),
          };
    const withReady = setCondition(template.status?.conditions, ready, generation, now);
    const verdict: KstatusVerdict =
      refused.length === 0 ? { kind: 'done' } : { kind: 'stalled', reason: ready.reason, message: ready.message };
    try {
      if (isBeingDeleted(template)) {
        // The VMs keep it; once none names it, it goes.
        if (users.length === 0) await removeFinalizer(client, VIRTUAL_MACHINE_TEMPLATE, template, TEMPLATE_FINALIZER);
      } else if (users.length > 0) {
        await addFinalizer(client, VIRTUAL_MACHINE_TEMPLATE, template, TEMPLATE_FINALIZER);
      }
      await patchStatusIfChanged(
        client,
        VIRTUAL_MACHINE_TEMPLATE,
        template as TemplateObject & { status?: Record<string, unknown> },
        {
          ...(users.length > 0 ? { usedBy: users.slice(0, MAX_LISTED) } : {}),
          usedByCount: users.length,
          conditions: withKstatusConditions(withReady, verdict, generation, now),
          observedGeneration: generation,
        },
      );
    } catch (error) {
      // Gone meanwhile, or changed under us: the watch brings the next version.
      if (isNotFound(error) || isConflict(error)) return;
      throw error;
    }
  }
}

export function virtualMachineTemplateController(options: TemplateControllerOptions): Controller {
  // A VM naming a template, or no longer naming it, changes the template's users.
  const templatesOfVm = watchMapped(options.vms, (vm) =>
    vm.spec.templateRef ? [`${vm.metadata.namespace}/${vm.spec.templateRef.name}`] : [],
  );
  return new Controller({
    name: 'virtualmachinetemplate',
    reconciler: new TemplateReconciler(options),
    logger: options.logger,
    concurrency: 2,
    sources: [watchOwn(options.templates), templatesOfVm],
  });
}
