// The VirtualMachines as every controller of the process sees them: each with its effective spec
// (its own fields over its VirtualMachineTemplate's, merge.ts). It stands in for the VM informer,
// so the VM controller, the capacity count, the HostPool controller and the rest all work from
// the same effective spec; a template's change is an update of each VM that names it, and
// reaches them as their own spec change would (a stopped VM takes it at its next start; a running
// one keeps running, with RestartRequired naming the fields).
//
// Nothing here is written back: the controllers write status, finalizers and annotations only,
// never spec, so the merged spec never reaches the API server.
import type { RawVirtualMachine } from '../../api/virtualmachine.js';
import { Informer, type InformerEvent } from '../../runtime/informer.js';
import type { KubeClient, KubeObject } from '../../runtime/kube-client.js';
import type { Logger } from '../../observability/logging.js';
import { VIRTUAL_MACHINE, type VmObject } from '../resources.js';
import { mergeTemplate } from './merge.js';
import type { TemplateObject } from './resource.js';

export type RawVmObject = RawVirtualMachine & KubeObject;

/** How a VM's template was taken, for the VM controller to report (template-status.ts). */
export type TemplateUse =
  | { state: 'none' }
  | { state: 'taken'; name: string; generation: number; fields: string[] }
  | { state: 'failed'; name: string; reason: 'TemplateNotFound' | 'TemplateInvalid'; message: string };

interface Entry {
  raw: RawVmObject;
  template: TemplateObject | undefined;
  vm: VmObject;
  use: TemplateUse;
}

export class EffectiveVms extends Informer<VmObject> {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(event: InformerEvent<VmObject>) => void>();

  constructor(
    client: KubeClient,
    logger: Logger,
    private readonly raw: Informer<RawVmObject>,
    private readonly templates: Informer<TemplateObject>,
  ) {
    // The base class's own list and watch are never run: every read goes to `raw` and `templates`.
    super(client, VIRTUAL_MACHINE, { logger });
    this.listen();
  }

  override on(handler: (event: InformerEvent<VmObject>) => void): () => void {
    this.listeners.add(handler);
    return () => this.listeners.delete(handler);
  }

  /**
   * One listener on each informer turns their events into effective-VM events, once for all
   * handlers: each handler gets the same old and new objects.
   */
  private listen(): void {
    this.raw.on((event) => {
      const key = keyOf(event.object);
      if (event.type === 'delete') {
        const last = this.entries.get(key)?.vm ?? this.effective(event.object).vm;
        this.entries.delete(key);
        this.dispatch({ type: 'delete', object: last });
        return;
      }
      const old = event.type === 'update' ? (this.entries.get(key)?.vm ?? this.effective(event.old).vm) : undefined;
      const now = this.entryFor(event.object).vm;
      this.dispatch(old ? { type: 'update', object: now, old } : { type: 'add', object: now });
    });
    this.templates.on((event) => {
      const { namespace, name } = event.object.metadata;
      for (const raw of this.raw.list()) {
        if (raw.metadata.namespace !== namespace || raw.spec.templateRef?.name !== name) continue;
        const old = this.entries.get(keyOf(raw))?.vm ?? this.effective(raw).vm;
        this.dispatch({ type: 'update', object: this.entryFor(raw).vm, old });
      }
    });
  }

  private dispatch(event: InformerEvent<VmObject>): void {
    for (const handler of this.listeners) handler(event);
  }

  override get(key: string): VmObject | undefined {
    const raw = this.raw.get(key);
    return raw && this.entryFor(raw).vm;
  }

  override list(): VmObject[] {
    return this.raw.list().map((raw) => this.entryFor(raw).vm);
  }

  override keys(): string[] {
    return this.raw.keys();
  }

  override hasSynced(): boolean {
    return this.raw.hasSynced() && this.templates.hasSynced();
  }

  override async waitForSync(): Promise<void> {
    await Promise.all([this.raw.waitForSync(), this.templates.waitForSync()]);
  }

  override run(): Promise<void> {
    throw new Error('EffectiveVms is a view of the VM and template informers: run those');
  }

  /** How the VM's template was taken (the VM object as get() returned it, or its key). */
  templateUse(vm: KubeObject): TemplateUse {
    const raw = this.raw.get(keyOf(vm));
    return raw ? this.entryFor(raw).use : { state: 'none' };
  }

  /** The cached merge, made again when the VM or its template changed (by object identity). */
  private entryFor(raw: RawVmObject): Entry {
    const key = keyOf(raw);
    const template = this.templateOf(raw);
    const cached = this.entries.get(key);
    if (cached && cached.raw === raw && cached.template === template) return cached;
    const entry = this.effective(raw, template);
    this.entries.set(key, entry);
    return entry;
  }

  private templateOf(raw: RawVmObject): TemplateObject | undefined {
    const name = raw.spec.templateRef?.name;
    return name === undefined ? undefined : this.templates.get(`${raw.metadata.namespace ?? ''}/${name}`);
  }

  private effective(raw: RawVmObject, template = this.templateOf(raw)): Entry {
    const name = raw.spec.templateRef?.name;
    const missing =
      name !== undefined && !template
        ? `spec.templateRef.name: no VirtualMachineTemplate ${name} in namespace ${raw.metadata.namespace ?? ''}; create it or fix the name`
        : undefined;
    const merged = mergeTemplate(raw.spec, template && name ? { name, spec: template.spec } : undefined, missing);
    const vm = { ...raw, spec: merged.spec } as VmObject;
    const use: TemplateUse =
      name === undefined
        ? { state: 'none' }
        : merged.ok
          ? { state: 'taken', name, generation: template?.metadata.generation ?? 0, fields: merged.fields }
          : {
              state: 'failed',
              name,
              reason: missing !== undefined ? 'TemplateNotFound' : 'TemplateInvalid',
              message: merged.message,
            };
    return { raw, template, vm, use };
  }
}

function keyOf(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}
