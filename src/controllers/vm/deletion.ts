// Step: deletion. Stops the domain (a graceful shutdown, destroyed after the grace period),
// undefines it, deletes its volumes (not those with retain) and its lease, releases the
// placement, forgets the VM, and only then removes the finalizer. While its host cannot be
// reached the VM stays Terminating and says what a person can do. A VM the API server deleted
// although it carried the finalizer (kubernetes#77988) gets the same work, from its last state.
import { ignoring, isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { hasFinalizer, isBeingDeleted, removeFinalizer } from '../../runtime/finalizers.js';
import { objectKey } from '../../runtime/informer.js';
import type { ReconcileResult } from '../../runtime/reconciler.js';
import { errorText } from '../error-text.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import { VIRTUAL_MACHINE, VM_FINALIZER, type VmObject } from '../resources.js';
import { VmStatusDraft } from '../vm-status.js';
import type { DisksStep } from './disks.js';
import { VmCopies } from './host-copies.js';
import type { VmKit } from './kit.js';
import type { LeaseStep } from './lease.js';
import type { PlacementStep } from './placement.js';
import type { PowerStep } from './power.js';

export interface DeletionSteps {
  placement: PlacementStep;
  power: PowerStep;
  disks: DisksStep;
  lease: LeaseStep;
  /** Every step forgets the VM (one loop, in the reconciler). */
  forget: (uid: string) => void;
}

export class DeletionStep {
  private readonly copies: VmCopies;
  /** By key: VMs the API server deleted while they carried our finalizer (finalizeVanished), their last state. */
  private readonly vanished = new Map<string, VmObject>();

  constructor(
    private readonly kit: VmKit,
    private readonly steps: DeletionSteps,
  ) {
    this.copies = new VmCopies(kit.options.fleet);
  }

  async finalize(vm: VmObject, draft: VmStatusDraft): Promise<ReconcileResult | void> {
    if (!hasFinalizer(vm, VM_FINALIZER)) return;
    const { options } = this.kit;
    const uid = vm.metadata.uid ?? '';
    const placement = this.steps.placement.placementOf(vm);
    const waiting = await this.cleanUp(vm, draft, (d) => this.kit.writeStatus(vm, d));
    if (waiting !== undefined) return waiting;
    // The Deleted Event is the record a later controller process finds when a domain of this VM
    // shows up after all (a define or start a killed controller sent, completing late:
    // hostpool-orphans.ts). Written at once and for sure before the finalizer goes: a queued
    // Event can wait behind a backlog, or die with this process. Once per deletion in this process.
    if (!options.fleet.deletedHere(uid, this.kit.now())) {
      try {
        await options.events.recordNow(
          vm,
          'Normal',
          E.Deleted,
          'no copy of the domain is left on the hosts that answered; the VM goes',
        );
      } catch (error) {
        draft.phase('Terminating');
        draft.set(
          C.Ready,
          'False',
          R.Terminating,
          `cannot write the VM's Deleted Event yet (${errorText(error)}); the finalizer stays until it is written, ` +
            'so that a later controller can recognise a domain of this VM that shows up late',
        );
        await this.kit.writeStatus(vm, draft);
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
    }
    options.fleet.recordDeletion(uid, this.kit.now());
    await removeFinalizer(options.client, VIRTUAL_MACHINE, vm, VM_FINALIZER);
    options.logger.info(
      { vm: `${vm.metadata.namespace ?? ''}/${vm.metadata.name ?? ''}`, uid, host: placement?.host },
      'deleted: no copy of the domain left on the hosts that answered; finalizer removed',
    );
  }

  /** A watch's DELETED event: kept when the VM went under our finalizer (deletedUnderFinalizer). */
  noteDeleted(vm: VmObject, finalStateUnknown: boolean): void {
    if (deletedUnderFinalizer(vm, finalStateUnknown)) this.vanished.set(objectKey(vm), vm);
  }

  /** The VM of `key` that vanished under our finalizer, unless it is `current` itself (the same UID). */
  vanishedAt(key: string, current: VmObject | undefined): VmObject | undefined {
    const vanished = this.vanished.get(key);
    return vanished && vanished.metadata.uid !== current?.metadata.uid ? vanished : undefined;
  }

  /**
   * The API server deleted the VM although it carried our finalizer: a DELETE that read the VM
   * before our finalizer was added removes it regardless (kubernetes#77988, open; the storm saw
   * it under load). `vm` is its last state, from the watch's DELETED event. The deletion's work is
   * done all the same, without status (there is no object to write it to): the Deleted Event
   * first, so that if this process dies meanwhile a later one's orphan scan removes the domain
   * (hostpool-orphans.ts), then the domain, its copies, volumes and lease. Undefined when done.
   */
  async finalizeVanished(vm: VmObject): Promise<ReconcileResult | void> {
    const { options } = this.kit;
    const uid = vm.metadata.uid ?? '';
    if (!options.fleet.deletedHere(uid, this.kit.now())) {
      await options.events.recordNow(
        vm,
        'Warning',
        E.Deleted,
        'the API server deleted the VM although it carried its finalizer (a delete that raced the finalizer being ' +
          'added, kubernetes#77988); its domain, volumes and lease are removed all the same',
      );
      options.fleet.recordDeletion(uid, this.kit.now());
    }
    const placement = this.steps.placement.placementOf(vm);
    const waiting = await this.cleanUp(vm, new VmStatusDraft(vm), () => Promise.resolve());
    if (waiting !== undefined) return waiting;
    this.vanished.delete(objectKey(vm));
    options.logger.info(
      { vm: `${vm.metadata.namespace ?? ''}/${vm.metadata.name ?? ''}`, uid, host: placement?.host },
      'deleted under its finalizer by the API server: no copy of the domain left on the hosts that answered',
    );
  }

  /**
   * Removes the domain on its host (after a graceful shutdown), its volumes and lease, then its
   * copies elsewhere, and forgets the VM. Undefined when done; otherwise when to look again, with
   * the reason in `draft`, written by `report`.
   */
  private async cleanUp(
    vm: VmObject,
    draft: VmStatusDraft,
    report: (draft: VmStatusDraft) => Promise<unknown>,
  ): Promise<ReconcileResult | undefined> {
    const { options } = this.kit;
    const uid = vm.metadata.uid ?? '';
    const placement = this.steps.placement.placementOf(vm);
    if (placement) {
      const host = options.fleet.host(vm.spec.hostPoolRef.name, placement.host);
      draft.phase('Terminating');
      if (!host) {
        draft.set(
          C.Ready,
          'False',
          R.Terminating,
          `waiting for host ${placement.host} of HostPool ${vm.spec.hostPoolRef.name} to be connected to delete the domain; ` +
            'if the pool or host is gone for good, remove the finalizer by hand (the domain may remain on the host)',
        );
        await report(draft);
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
      try {
        const hypervisor = options.fleet.hypervisor(host.uri);
        const step = await this.removeDomain(vm, hypervisor);
        if (step !== undefined) {
          draft.set(
            C.Ready,
            'False',
            R.ShuttingDown,
            `shutting down before deletion; destroyed if still running after ${this.kit.graceMs / 1000} s`,
          );
          await report(draft);
          return { requeueAfterMs: step };
        }
        await this.steps.disks.remove(vm, hypervisor, host.name);
        await this.steps.lease.remove(vm, hypervisor);
      } catch (error) {
        if (!isHypervisorError(error, 'unreachable')) throw error;
        draft.set(
          C.Ready,
          'Unknown',
          R.HostUnreachable,
          `cannot delete the domain: host ${placement.host} is unreachable (${error.message}); the VM is deleted once the host answers`,
        );
        await report(draft);
        this.kit.event(
          vm,
          'Warning',
          E.HostUnreachable,
          `cannot delete the domain on ${placement.host}: ${error.message}`,
        );
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
    }
    await this.sweep(vm, placement?.host);
    await this.steps.disks.provisioner.cancel(uid);
    options.allocations.forget(uid);
    this.steps.forget(uid);
    return undefined;
  }

  /**
   * Copies of the domain on the pool's other reachable hosts are removed too: a migration's other
   * end, or a define a killed controller sent that completed after the next one looked. A host
   * that does not answer is not waited for; the pool's orphan scan reports what it may hold.
   */
  private async sweep(vm: VmObject, placed: string | undefined): Promise<void> {
    const uid = vm.metadata.uid ?? '';
    const pool = vm.spec.hostPoolRef.name;
    const sightings = await this.copies.sight(pool, uid, 'all');
    const removals = sightings.flatMap((sighting) =>
      sighting.reach === 'reachable' && sighting.domain && sighting.host !== placed
        ? [{ host: sighting.host, state: sighting.domain.state, why: 'the VM is being deleted' }]
        : [],
    );
    if (removals.length === 0) return;
    const { removed, failed } = await this.copies.remove(pool, uid, removals);
    for (const removal of removed)
      this.kit.event(vm, 'Normal', E.Undefined, `a copy of the domain (${removal.state}) removed from ${removal.host}`);
    if (failed.length > 0)
      throw new Error(`cannot remove the domain's copies on ${failed.map((f) => `${f.host} (${f.error})`).join(', ')}`);
  }

  /** Undefined when the domain is gone; otherwise the delay before looking again (a shutdown is under way). */
  private async removeDomain(vm: VmObject, hypervisor: Hypervisor): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const domain = await hypervisor.lookup(uid);
    if (!domain) return undefined;
    const after = await this.steps.power.stop(vm, hypervisor, domain);
    if (after !== undefined) return after;
    // A start sent by a controller that died may still be under way on the host: the domain then
    // looks shut off, and an undefine alone would leave it running as a transient domain once
    // the start completes (libvirt makes an active domain transient instead of removing it).
    // The destroy ends such a start; it is refused (invalid-state) for a domain truly shut off.
    await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
    await ignoring(['not-found'], () => hypervisor.undefine(uid));
    // Gone, or looked at again shortly: the finalizer goes only once the host has no copy.
    const left = await hypervisor.lookup(uid);
    if (left) {
      this.kit.options.logger.info(
        { vm: `${vm.metadata.namespace}/${vm.metadata.name}`, state: left.state, reason: left.reason },
        'domain still present after undefine; removing it again',
      );
      return UNDEFINE_RETRY_MS;
    }
    this.kit.event(vm, 'Normal', E.Undefined, `domain ${domain.name} removed from ${hypervisor.uri}`);
    return undefined;
  }
}

/**
 * Whether a watch's DELETED event shows a VM the API server deleted under our finalizer. Its
 * object is the last state stored before the deletion. A VM deleted as it should be was marked
 * first (deletionTimestamp), and went when its finalizers did: by this step, or by hand with
 * `vm delete --force`, which means to leave the domain. One that still carries our finalizer and
 * was never marked was deleted at once by a DELETE that read it before the finalizer was added
 * (kubernetes#77988). A relist's tombstone (finalStateUnknown) shows only what the cache last
 * saw, so it proves nothing.
 */
export function deletedUnderFinalizer(vm: VmObject, finalStateUnknown: boolean): boolean {
  return !finalStateUnknown && hasFinalizer(vm, VM_FINALIZER) && !isBeingDeleted(vm);
}

/** How soon a deletion looks again at a domain that outlived its undefine (a start completing). */
const UNDEFINE_RETRY_MS = 500;
