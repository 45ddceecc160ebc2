// Step: suspend. While virtfleet.io/action=suspend holds the VM (`virtfleet vm suspend`), its
// memory goes to a file on its host (libvirt managed save) and its QEMU process ends, so the
// host's memory is free; the power step stands aside. Lifting the hold (`vm resume`, `vm start`,
// or removing the annotation under runStrategy Always) starts the domain, which libvirt restores
// from that file: the guest continues where it was.
//
// A suspended VM keeps its place on the host (status.host and its allocation): the saved memory
// is a file on that host only and comes back there, and resuming must find the memory it gave
// up. The scheduler therefore still counts it (docs/snapshots.md).
import type { DomainStatus, Hypervisor } from '../../hypervisors/hypervisor.js';
import { VM_CONDITIONS as C } from '../reasons.js';
import type { VmObject } from '../resources.js';
import { isActive } from '../run-strategy.js';
import { ACTION_ANNOTATION, actionRequest, isNewRequest } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';
import type { PowerOutcome } from './power.js';

/** Ready's reason while the hold keeps the VM saved (or stopped): as asked, so Ready=True. */
export const SUSPENDED_BY_USER = 'SuspendedByUser';
/** The Event when the VM was saved. */
export const SUSPENDED_EVENT = 'Suspended';

export class SuspendStep {
  constructor(private readonly kit: VmKit) {}

  /**
   * Under a suspend hold: saves an active domain, and reports phase and Ready. Undefined when
   * no suspend is asked: the power step governs.
   */
  async apply(
    vm: VmObject,
    hypervisor: Hypervisor,
    domain: DomainStatus,
    draft: VmStatusDraft,
  ): Promise<PowerOutcome | undefined> {
    const request = actionRequest(vm.metadata.annotations);
    if (!request || 'error' in request || request.action !== 'suspend') return undefined;
    const uid = vm.metadata.uid ?? '';
    const name = vm.metadata.name ?? '';
    const isNew = isNewRequest(request, draft.status.lastAction);
    let after = domain;
    if (isActive(domain.state) || domain.state === 'paused') {
      if (isNew)
        this.kit.recordAction(vm, draft, { ...request, state: 'InProgress', message: 'saving memory to disk' });
      await hypervisor.managedSave(uid);
      this.kit.event(vm, 'Normal', SUSPENDED_EVENT, `memory saved to disk on ${hypervisor.uri}; QEMU process ended`);
      after = await hypervisor.state(uid);
    }
    if (isActive(after.state) || after.state === 'paused') return { domain: after, requeueAfterMs: 1000 }; // not saved yet: look again soon
    const saved = await hypervisor.hasManagedSave(uid);
    const message = saved
      ? `suspended on request (${ACTION_ANNOTATION}=suspend): memory saved on host ${vm.status?.host ?? hypervisor.uri}, no QEMU process; \`virtfleet vm resume ${name}\` continues it`
      : `held stopped by ${ACTION_ANNOTATION}=suspend (it was not running, so there was nothing to save); \`virtfleet vm resume ${name}\` starts it`;
    if (isNew || draft.status.lastAction?.state !== 'Succeeded')
      this.kit.recordAction(vm, draft, {
        ...request,
        state: 'Succeeded',
        message: saved ? 'suspended; it stays suspended until `virtfleet vm resume`' : 'was not running; held stopped',
      });
    draft.phase(saved ? 'Suspended' : 'Stopped');
    draft.set(C.Ready, 'True', SUSPENDED_BY_USER, message);
    return { domain: after };
  }
}
