// The VirtualMachine controller's reconcile (key: namespace/name): a fixed list of steps in the
// kubebuilder order, one file each in this folder.
//
//   get (gone → forget it; gone under our finalizer → the deletion's work first) →
//   deletion (deletion.ts) → finalizer → placement (placement.ts) → where the copies are
//   (copies.ts) → recovery from a failed host (recovery.ts) → status written → the host is
//   ready (host.ts) → a migration under way (migration.ts) → disks (disks.ts) →
//   install (../install/flow.ts) → lease (lease.ts) → domain (domain.ts) → migration asked
//   (migration.ts) → suspend (suspend.ts) or power (power.ts) → live state (live-state.ts) → health (health.ts) → status.
//
// A step halts the reconcile by throwing Halt (with a requeue), or returns when to look again.
// Identity never rests on memory: the domain's UUID is the VM's UID and status.host says where
// it is, so a restarted controller finds what it made; per-VM memory (memory.ts) only saves
// libvirt calls, times grace periods and bridges the cache's lag behind our writes.
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { addFinalizer, isBeingDeleted } from '../../runtime/finalizers.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/reconciler.js';
import { InstallFlow, type InstallContext } from '../install/flow.js';
import { VIRTUAL_MACHINE, VM_FINALIZER, type PoolObject, type VmObject } from '../resources.js';
import { DiskProvisioner } from '../vm-storage.js';
import { VmStatusDraft } from '../vm-status.js';
import { CopiesStep } from './copies.js';
import { DeletionStep } from './deletion.js';
import { DisksStep } from './disks.js';
import { DomainStep, REDEFINED_BECAUSE } from './domain.js';
import { HealthStep } from './health.js';
import { HostStep } from './host.js';
import { Halt, minDefined, VmKit } from './kit.js';
import { LeaseStep } from './lease.js';
import { LeaseRecovery } from './lease-recovery.js';
import { LiveStateStep } from './live-state.js';
import { MigrationStep } from './migration.js';
import type { VirtualMachineControllerOptions } from './options.js';
import { PlacementStep } from './placement.js';
import { PowerStep } from './power.js';
import { RecoveryStep } from './recovery.js';
import { SuspendStep } from './suspend.js';
import { reportTemplate } from '../template/vm-status.js';

export class VirtualMachineReconciler implements Reconciler {
  readonly kit: VmKit;
  readonly placement: PlacementStep;
  readonly migration: MigrationStep;
  readonly copies: CopiesStep;
  readonly recovery: RecoveryStep;
  /** A failed host's VMs tried elsewhere by lease (spec.leases, no fencing): the power step's starts decide. */
  readonly leaseRecovery: LeaseRecovery;
  readonly host: HostStep;
  readonly disks: DisksStep;
  /** spec.install: the installs under way and the Kickstart endpoint's answers (../install/flow.ts). */
  readonly installs: InstallFlow;
  readonly lease: LeaseStep;
  readonly domain: DomainStep;
  readonly power: PowerStep;
  readonly suspend: SuspendStep;
  readonly liveState: LiveStateStep;
  readonly health: HealthStep;
  readonly deletion: DeletionStep;

  constructor(options: VirtualMachineControllerOptions) {
    const kit = (this.kit = new VmKit(options));
    this.placement = new PlacementStep(kit);
    this.migration = new MigrationStep(kit, this.placement);
    this.copies = new CopiesStep(kit, this.migration.jobs);
    this.recovery = new RecoveryStep(kit, this.placement);
    this.leaseRecovery = new LeaseRecovery(kit);
    this.host = new HostStep(kit);
    this.disks = new DisksStep(kit, options.disks ?? new DiskProvisioner());
    this.installs = new InstallFlow({
      client: options.client,
      vms: options.vms,
      logger: options.logger,
      event: (vm, type, reason, message) => kit.event(vm, type, reason, message),
      ...(options.profiles ? { profiles: options.profiles } : {}),
      ...(options.installServer ? { server: options.installServer } : {}),
      ...(options.installTimeoutMs ? { timeoutMs: options.installTimeoutMs } : {}),
      ...(options.installPxe ? { pxe: options.installPxe } : {}),
      now: kit.now,
    });
    this.lease = new LeaseStep(kit);
    this.domain = new DomainStep(kit, this.copies);
    this.power = new PowerStep(kit, this.copies, this.leaseRecovery);
    this.suspend = new SuspendStep(kit);
    this.liveState = new LiveStateStep(kit);
    this.health = new HealthStep(kit);
    this.deletion = new DeletionStep(kit, {
      placement: this.placement,
      power: this.power,
      disks: this.disks,
      lease: this.lease,
      forget: (uid) => this.forgetVm(uid),
    });
  }

  async reconcile({ key }: ReconcileContext): Promise<ReconcileResult | void> {
    const { options } = this.kit;
    const vm = options.vms.get(key);
    // Deleted by the API server under our finalizer (deletion.ts): its deletion's work comes first.
    const vanished = this.deletion.vanishedAt(key, vm);
    if (vanished) {
      const again = await this.deletion.finalizeVanished(vanished);
      if (again) return again;
    }
    if (!vm) return this.forgetKey(key);
    const draft = new VmStatusDraft(vm);
    // Our own newer writes over a cache that may not show them yet (memory.ts, `written`).
    const written = this.kit.memory(vm).written;
    if (written) draft.status = structuredClone(written);
    if (isBeingDeleted(vm)) return this.deletion.finalize(vm, draft);
    // The finalizer goes out together with the first status write (one round trip, not two: the
    // patch tests the finalizer list, not the resourceVersion). It must be on before anything is
    // made on a host; a failure before that point only means the next reconcile adds it again.
    const finalizer = addFinalizer(options.client, VIRTUAL_MACHINE, vm, VM_FINALIZER).then(
      () => undefined,
      (error: unknown) => error,
    );
    let current = vm;
    try {
      // spec.templateRef: status.template, or a refusal before anything is placed or made.
      const template = options.templateUse?.(vm);
      if (template && !reportTemplate(vm, template, draft, (...e) => this.kit.event(vm, ...e))) throw new Halt();
      const pool = options.pools.get(vm.spec.hostPoolRef.name);
      let placement = this.placement.ensurePlaced(vm, pool, draft);
      if (!placement) throw new Halt();
      // Where the VM runs when status alone cannot tell: before anything is started or moved.
      const settled = pool ? await this.copies.settle(vm, pool, draft) : undefined;
      if (settled !== undefined) throw new Halt(settled);
      const recovery = this.recovery.verdict(vm, pool, placement, draft.status.migration);
      if (recovery?.go) {
        // After fencing, a copy already running on a reachable host is adopted, not replaced. By
        // lease, the silent old host does not hold the start: its copy would hold the leases.
        const leased = new Set(recovery.proof === 'lease' ? [recovery.from] : []);
        await this.copies.guardStart(vm, pool!, placement.host, draft, leased);
        const from = placement.host;
        placement = this.recovery.placeElsewhere(vm, pool!, from, draft, recovery.proof);
        if (!placement) throw new Halt(this.kit.hostRetryMs);
        if (recovery.proof === 'lease') this.leaseRecovery.trying(vm, from, recovery.failedAt);
      }
      this.recovery.reportBlocked(
        vm,
        recovery && !recovery.go ? recovery.metric : this.leaseRecovery.blockedMetric(vm),
      );
      // Recorded before anything is made on the host: a controller that dies after the define
      // finds the domain where status says, instead of placing the VM a second time elsewhere.
      current = await this.kit.writeStatus(current, draft);
      const finalizerError = await finalizer;
      if (finalizerError !== undefined) throw finalizerError;
      const host = this.host.readyHost(vm, pool, placement, draft, recovery && !recovery.go ? recovery : undefined);
      const hypervisor = options.fleet.hypervisor(host.uri);
      // A migration under way comes first: the domain is on two hosts meanwhile.
      const inFlight = await this.migration.inFlight(vm, hypervisor, draft);
      if (inFlight !== undefined) throw new Halt(inFlight);
      const disks = await this.disks.ensure(vm, pool!, host, hypervisor, draft);
      // spec.install (install/flow.ts): which boot to define, and whether the power steps run.
      const installContext = this.installContext(vm, pool!, hypervisor, draft);
      const install = await this.installs.prepare(installContext);
      if (install.kind === 'wait') throw new Halt(install.requeueAfterMs);
      const installer = install.kind === 'install' ? install.domain : undefined;
      await this.lease.ensure(vm, pool!, hypervisor, draft);
      let domain = await this.domain.ensure({
        vm,
        pool: pool!,
        host,
        placement,
        hypervisor,
        draft,
        disks,
        ...(installer ? { installer } : {}),
        redefinedBecause: REDEFINED_BECAUSE[install.kind],
      });
      domain = await this.installs.afterDefine(installContext, install, domain);
      if (install.kind === 'failed') throw new Halt(); // held stopped until `virtfleet vm restart`; no power steps
      const migrating = await this.migration.start(vm, pool!, host, hypervisor, domain, draft);
      if (migrating !== undefined) throw new Halt(migrating);
      // A suspend hold saves the VM and reports it; otherwise the power step governs.
      const suspended = await this.suspend.apply(vm, hypervisor, domain, draft);
      const power = suspended ?? (await this.power.apply(vm, pool!, host.name, hypervisor, domain, draft));
      domain = power.domain;
      // A running installer is Installing, not Running (install.ts says so instead).
      if (!suspended && !power.backingOff && !this.installs.report(vm, install, domain, draft))
        this.power.reportState(vm, domain, draft, power.hold);
      const addressRetry = await this.liveState.inspect(vm, hypervisor, domain, draft);
      // No health probes on an installer: it would fail them and be restarted.
      if (!power.backingOff && install.kind !== 'install') await this.health.check(vm, hypervisor, domain, draft);
      await this.kit.writeStatus(current, draft);
      const requeueAfterMs = minDefined(
        power.requeueAfterMs,
        addressRetry,
        install.kind === 'install' ? install.requeueAfterMs : undefined,
      );
      return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
    } catch (error) {
      if (error instanceof Halt) {
        await this.kit.writeStatus(current, draft);
        return error.requeueAfterMs === undefined ? undefined : { requeueAfterMs: error.requeueAfterMs };
      }
      if (isHypervisorError(error, 'unreachable')) {
        this.host.unreachable(vm, draft, error.message);
        await this.kit.writeStatus(current, draft);
        return { requeueAfterMs: this.kit.hostRetryMs };
      }
      throw error;
    } finally {
      this.kit.flushNotes(vm);
    }
  }

  private installContext(vm: VmObject, pool: PoolObject, hypervisor: Hypervisor, draft: VmStatusDraft): InstallContext {
    return {
      vm,
      pool,
      hypervisor,
      draft,
      shutdownAsked: this.power.shutdownAsked(vm),
      recordAction: (record) => this.kit.recordAction(vm, draft, record),
      event: (type, reason, message) => this.kit.event(vm, type, reason, message),
    };
  }

  /** The object is gone (deleted, or its finalizer removed by hand with `vm delete --force`). */
  private forgetKey(key: string): void {
    this.kit.options.allocations.forgetKey(key);
    const uid = this.kit.memories.uidOf(key);
    if (uid !== undefined) this.forgetVm(uid);
  }

  /** Every step forgets the VM, its per-VM metric series go, then its memory: one loop. */
  private forgetVm(uid: string): void {
    for (const step of [this.migration, this.recovery, this.disks, this.lease, this.power, this.health])
      step.forget(uid);
    this.installs.forget(uid);
    const memory = this.kit.memories.peek(uid);
    const metrics = this.kit.options.metrics;
    if (memory && metrics) {
      const labels = { namespace: memory.namespace, name: memory.name };
      for (const reason of ['crash', 'probe', 'host_failure']) metrics.vmRestarts.remove({ ...labels, reason });
      metrics.vmSplitBrain.remove(labels);
    }
    this.kit.memories.drop(uid);
  }
}
