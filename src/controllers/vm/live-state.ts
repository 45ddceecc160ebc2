// Step: what only a running domain tells. Spec changes it can take live (memory within the
// maximum it started with) are applied; the rest, where its live and persistent definitions still
// differ, are RestartRequired; its addresses; and where its VNC server listens. Writes
// RestartRequired, status.addresses and status.graphics.
import { vncListenOf } from '../../hypervisors/domain-graphics.js';
import { isHypervisorError, type DomainStatus, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { VmObject } from '../resources.js';
import { fieldsAwaitingRestart, liveMemoryTarget } from '../restart-required.js';
import { namedWithTemplate } from '../template/vm-status.js';
import { isActive } from '../run-strategy.js';
import { guestAddresses, interfaceNamesByMac, type Address } from '../vm-addresses.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';

export class LiveStateStep {
  constructor(private readonly kit: VmKit) {}

  /** Returns when to look again for addresses not known yet. */
  async inspect(
    vm: VmObject,
    hypervisor: Hypervisor,
    domain: DomainStatus,
    draft: VmStatusDraft,
  ): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    if (!isActive(domain.state)) {
      this.setRestartRequired(vm, draft, []);
      delete draft.status.addresses;
      delete draft.status.graphics;
      return undefined;
    }
    const persistent = await hypervisor.xml(uid, { inactive: true });
    let live = await hypervisor.xml(uid);
    const memory = liveMemoryTarget(live, persistent);
    if (memory !== undefined) {
      try {
        await hypervisor.setMemory(uid, memory);
        this.kit.event(
          vm,
          'Normal',
          E.LiveUpdated,
          `memory set to ${formatBytes(memory)} on the running domain ${domain.name} (spec.memory)`,
        );
        live = await hypervisor.xml(uid);
      } catch (error) {
        // Refused live (no balloon driver in the guest, the domain just stopped): it waits for a restart.
        if (!isHypervisorError(error, 'invalid-state') && !isHypervisorError(error, 'unsupported')) throw error;
      }
    }
    const fields = fieldsAwaitingRestart(live, persistent);
    this.setRestartRequired(vm, draft, namedWithTemplate(fields, this.kit.options.templateUse?.(vm)));
    recordGraphics(live, draft);
    return this.refreshAddresses(vm, hypervisor, live, draft);
  }

  private setRestartRequired(vm: VmObject, draft: VmStatusDraft, fields: string[]): void {
    if (fields.length > 0) {
      const message = `${fields.join(', ')} changed; the running domain takes the change at its next start (\`virtfleet vm restart ${vm.metadata.name ?? ''}\`)`;
      if (draft.set(C.RestartRequired, 'True', R.PendingChanges, message))
        this.kit.event(vm, 'Normal', E.RestartRequired, message);
    } else if (draft.condition(C.RestartRequired)) {
      draft.set(C.RestartRequired, 'False', R.NoPendingChanges, 'the domain runs its current definition');
    }
  }

  /**
   * status.addresses: DHCP leases of the host's libvirt network first, else the guest agent.
   * While a VM with interfaces has none yet, it is looked at again after addressRetryMs; an
   * answer the host cannot give keeps what status had.
   */
  private async refreshAddresses(
    vm: VmObject,
    hypervisor: Hypervisor,
    liveXml: string,
    draft: VmStatusDraft,
  ): Promise<number | undefined> {
    const names = interfaceNamesByMac(liveXml, vm.spec.networks);
    if (names.size === 0) {
      delete draft.status.addresses;
      return undefined;
    }
    const uid = vm.metadata.uid ?? '';
    let addresses: Address[] | undefined;
    for (const source of ['lease', 'agent'] as const) {
      try {
        addresses = guestAddresses(await hypervisor.interfaceAddresses(uid, source), names);
      } catch (error) {
        // A paused domain's agent cannot answer ('invalid-state': "domain is not running"): keep
        // what status had, as for a host that cannot tell, instead of failing every reconcile.
        const kinds = ['unsupported', 'failed', 'invalid-state'] as const;
        if (!kinds.some((kind) => isHypervisorError(error, kind))) throw error;
      }
      if (addresses && addresses.length > 0) break;
    }
    if (addresses && addresses.length > 0) draft.status.addresses = addresses;
    return draft.status.addresses?.length ? undefined : this.kit.addressRetryMs;
  }
}

/** status.graphics: where the running domain's VNC server listens, so `virtfleet api` can reach it. */
function recordGraphics(liveXml: string, draft: VmStatusDraft): void {
  const listen = vncListenOf(liveXml);
  const host = draft.status.host;
  if (!listen || host === undefined) delete draft.status.graphics;
  else draft.status.graphics = { type: 'vnc', host, ...listen };
}

function formatBytes(bytes: number): string {
  const MiB = 1024 * 1024;
  return bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${Math.round((bytes / MiB) * 10) / 10} MiB`;
}
