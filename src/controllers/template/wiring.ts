// The VirtualMachineTemplate controller: a template that VMs name keeps the finalizer
// virtfleet.io/template-in-use, so deleting it waits until no VM of its namespace names it (a VM's
// effective spec never loses its source); status.usedBy lists those VMs. It reads the VMs as
// written (spec.templateRef), not their effective specs.
import { Controller } from '../../runtime/controller.js';
import { addFinalizer, isBeingDeleted, removeFinalizer } from '../../runtime/finalizers.js';
import type { Informer } from '../../runtime/informer.js';
import { isConflict, isNotFound, type KubeClient } from '../../runtime/kube-client.js';
import type { ReconcileContext, Reconciler } from '../../runtime/reconciler.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { watchMapped, watchOwn } from '../../runtime/sources.js';
import type { Logger } from '../../observability/logging.js';
import type { RawVmObject } from './effective-vms.js';
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
          observedGeneration: template.metadata.generation ?? 0,
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
