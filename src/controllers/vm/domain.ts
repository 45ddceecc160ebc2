// Step: the domain, defined on its host under the VM's UID (or redefined after a spec change);
// the XML this process last defined is remembered so that an unchanged spec costs no define
// call. Writes Provisioned (Defined, InvalidDefinition), status.domainUUID and domainName.
import { domainName } from '../../hypervisors/domain-name.js';
import { DomainSpecError } from '../../hypervisors/domain-values.js';
import type { DiskBacking } from '../../hypervisors/domain-xml.js';
import { isHypervisorError, type DomainStatus, type Hypervisor } from '../../hypervisors/hypervisor.js';
import type { FleetHost } from '../../hosts/fleet.js';
import type { InstallerDomain, InstallPlan } from '../install/flow.js';
import { installerSerialLog } from '../install/serial-log.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import { domainXmlFor } from '../vm-domain.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { CopiesStep } from './copies.js';
import { Halt, type VmKit } from './kit.js';
import type { Placement } from './placement.js';
import { ValidatedDefinitions, withPlaceholderIdentity } from './validated-definitions.js';

/** How a redefinition is explained in the Redefined Event, by install plan. */
export const REDEFINED_BECAUSE: Record<InstallPlan['kind'], string> = {
  none: 'after a spec change',
  wait: 'after a spec change',
  install: 'to boot the installer',
  installed: 'to boot from its disk after the install',
  failed: 'to boot from its disk (the install failed)',
};

export interface DefineRequest {
  vm: VmObject;
  pool: PoolObject;
  host: FleetHost;
  placement: Placement;
  hypervisor: Hypervisor;
  draft: VmStatusDraft;
  disks: Record<string, DiskBacking>;
  /** The installer's boot (and network) while spec.install runs (install/flow.ts); the spec's own otherwise. */
  installer?: InstallerDomain;
  redefinedBecause: string;
}

export class DomainStep {
  /** Definition shapes the hosts' libvirt has validated (validated-definitions.ts). */
  readonly validated = new ValidatedDefinitions();

  constructor(
    private readonly kit: VmKit,
    private readonly copies: CopiesStep,
  ) {}

  /** Defines the domain (or redefines it after a spec change) and returns its state. */
  async ensure({
    vm,
    pool,
    host,
    placement,
    hypervisor,
    draft,
    disks,
    installer,
    redefinedBecause,
  }: DefineRequest): Promise<DomainStatus> {
    const uid = vm.metadata.uid ?? '';
    const type = placement.hypervisor ?? host.verdict.readiness.hypervisor;
    if (!type) throw new Halt(this.kit.hostRetryMs); // the host step made sure the host has one
    let xml: string;
    let name: string;
    const facts = host.observed.facts!;
    const source = installer ? { ...vm, spec: { ...vm.spec, ...installer.spec } } : vm;
    const build = (of: VmObject) => {
      // The installer's console goes to a file on the host too: failure messages point there.
      const { namespace = '', name: vmName = '', uid: ofUid = '' } = of.metadata;
      const serialLog = installer
        ? installerSerialLog(domainName(namespace, vmName, ofUid), type, source.spec.xen?.mode)
        : undefined;
      return domainXmlFor(of, pool.spec, type, facts, disks, installer?.bootDevice, serialLog);
    };
    try {
      ({ xml, name } = build(source));
    } catch (error) {
      if (!(error instanceof DomainSpecError)) throw error;
      this.refuse(vm, draft, error.message);
      throw new Halt();
    }
    const existing = await hypervisor.lookup(uid);
    // A VM defined before whose domain is not here: it may live elsewhere (a migration finished
    // unseen); a fresh VM's UID cannot be on any host yet.
    if (!existing && vm.status?.domainUUID) await this.copies.guardStart(vm, pool, host.name, draft);
    const memory = this.kit.memory(vm);
    const previous = memory.defined;
    if (!existing || previous !== xml) {
      // The host's schema check, once per shape of definition on its libvirt (validated-definitions.ts).
      const shape = this.validated.key(facts, build(withPlaceholderIdentity(source)).xml);
      const validate = !this.validated.has(shape);
      try {
        await hypervisor.ensureDefined(xml, { validate });
        if (validate) this.validated.add(shape);
      } catch (error) {
        if (!isHypervisorError(error, 'invalid-definition')) throw error;
        this.refuse(vm, draft, error.message);
        throw new Halt();
      }
      memory.defined = xml;
      if (!existing) this.kit.note(vm, E.Defined, `domain ${name} defined on ${host.name}`);
      // After a controller restart `previous` is unknown: the define only re-syncs, no news.
      else if (previous !== undefined)
        this.kit.event(vm, 'Normal', E.Redefined, `domain ${name} redefined on ${host.name} ${redefinedBecause}`);
    }
    draft.status.domainUUID = uid;
    draft.status.domainName = name;
    draft.set(C.Provisioned, 'True', R.Defined, `domain ${name} defined on ${host.name} (${type})`);
    return existing ?? (await hypervisor.state(uid));
  }

  private refuse(vm: VmObject, draft: VmStatusDraft, message: string): void {
    draft.phase('Failed');
    if (draft.set(C.Provisioned, 'False', R.InvalidDefinition, `${message}; fix the spec`)) {
      this.kit.event(vm, 'Warning', E.DefinitionRefused, message);
    }
    draft.set(C.Ready, 'False', R.InvalidDefinition, 'the domain cannot be defined (see Provisioned)');
  }
}
