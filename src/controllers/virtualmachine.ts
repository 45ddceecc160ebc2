// The VirtualMachine controller (key: namespace/name), in the kubebuilder order:
//
//   get (gone → forget it) → deletion path (stop, undefine, release, then the finalizer) →
//   finalizer → placement (once; recorded in status before anything is made on the host) →
//   domain defined on its host (UUID = metadata.uid) → power per spec.runStrategy →
//   RestartRequired → status, written only when it changed.
//
// Identity never rests on memory: the domain's UUID is the VM's UID and status.host says where
// it is, so a restarted controller finds what it made. What is remembered in memory (the XML
// last defined, when a shutdown was asked) only saves libvirt calls or times a grace period.
import type { HostPool } from '../api/hostpool.js';
import { DomainSpecError } from '../hypervisors/domain-values.js';
import { ignoring, isHypervisorError, type DomainStatus, type Hypervisor } from '../hypervisors/hypervisor.js';
import type { Logger } from '../observability/logging.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import { Controller } from '../runtime/controller.js';
import type { EventRecorder, EventType } from '../runtime/events.js';
import { addFinalizer, hasFinalizer, isBeingDeleted, removeFinalizer } from '../runtime/finalizers.js';
import { objectKey, type Informer } from '../runtime/informer.js';
import type { KubeClient } from '../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../runtime/reconciler.js';
import { watchOwn, type Source } from '../runtime/sources.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import type { HypervisorType } from '../scheduler/auto-hypervisor.js';
import type { LabelSelector } from '../scheduler/label-selector.js';
import { place, type HostState, type PlacementPolicy, type VmRequest } from '../scheduler/placement.js';
import { vmResources, type Allocations, type Placed } from './allocations.js';
import { FAILED_HOST_REASONS } from './pool-status.js';
import type { Fleet, FleetHost } from './fleet.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from './reasons.js';
import { VIRTUAL_MACHINE, VM_FINALIZER, type PoolObject, type VmObject } from './resources.js';
import { fieldsAwaitingRestart, liveMemoryTarget } from './restart-required.js';
import { guestAddresses, interfaceNamesByMac, type Address } from './vm-addresses.js';
import { isActive, stopAction, type PowerAction } from './run-strategy.js';
import { domainXmlFor } from './vm-domain.js';
import { ACTION_ANNOTATION, ACTION_ID_ANNOTATION, MIGRATE_TO_ANNOTATION, actionRequest, decideAction, type ActionDecision, type VmAction } from './vm-actions.js';
import type { DiskBacking } from '../hypervisors/domain-xml.js';
import { DiskProvisioner, type StorageSpec } from './vm-storage.js';
import { CrashBackoff } from './crash-backoff.js';
import { HealthProbes } from './health.js';
import { MIGRATION_ATTEMPTS, MigrationJobs, progressText, type MigrationJob } from './vm-migration.js';
import { VmCopies } from './vm-copies.js';
import { LeaseFiles } from './vm-lease.js';
import { errorText } from './error-text.js';
import { live, locate, suspectHosts, type Location } from './vm-location.js';
import { VmStatusDraft } from './vm-status.js';
import { untilAborted } from '../runtime/abort.js';
import { InstallFlow, type InstallContext, type InstallerDomain, type InstallPlan } from './install.js';
import type { ProfileObject } from './installprofile.js';
import type { InstallServer } from '../provisioning/install-server.js';
import type { PxeSettings } from '../provisioning/pxe.js';

export interface VirtualMachineControllerOptions {
  client: KubeClient;
  vms: Informer<VmObject>;
  pools: Informer<PoolObject>;
  fleet: Fleet;
  allocations: Allocations;
  events: EventRecorder;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** How long a guest has to shut down (Halted, delete) before it is destroyed. Default 60 s. */
  shutdownGraceMs?: number;
  /** When to look again at a VM whose host is not ready or unreachable. Default 30 s. */
  hostRetryMs?: number;
  /** When to look again for the addresses of a running VM that has interfaces but no address yet. Default 15 s. */
  addressRetryMs?: number;
  /** Called with a VM's UID when its migration ended or its health verdict changed (the wiring enqueues it). */
  onMigrationEnd?: (uid: string) => void;
  /** Makes the disks' volumes; default one of the reconciler's own. */
  disks?: DiskProvisioner;
  /** InstallProfiles, for VMs with spec.install (install.ts). */
  profiles?: Informer<ProfileObject>;
  /** The endpoint that serves installing VMs their Kickstart; without it, installs wait. */
  installServer?: InstallServer;
  /** Overrides the profiles' spec.timeoutMinutes (tests). */
  installTimeoutMs?: number;
  /** The install network and PXE pool on the hosts (defaults: src/provisioning/pxe.ts PXE_DEFAULTS). */
  installPxe?: Partial<PxeSettings>;
}

/** How a redefinition is explained in the Redefined Event, by install plan. */
const REDEFINED_BECAUSE: Record<InstallPlan['kind'], string> = {
  none: 'after a spec change',
  wait: 'after a spec change',
  install: 'to boot the installer',
  installed: 'to boot from its disk after the install',
  failed: 'to boot from its disk (the install failed)',
};

/** The VM's placement, from status or from this process's newer decision. */
interface Placement {
  host: string;
  hypervisor: HypervisorType | undefined;
}

/** How often a running migration's progress is read (and the VM looked at). */
const MIGRATION_LOOK_MS = 2_000;
/** A migration that has not finished by then is aborted (and counts as a failed attempt). */
const MIGRATION_TIMEOUT_MS = 10 * 60_000;

/** Whether a VM of a failed host may be started elsewhere now, or why it waits. */
type RecoveryVerdict = { go: true; failedAt: number; fencedBy: string } | RecoveryWait;
interface RecoveryWait {
  go: false;
  reason: string;
  message: string;
  /** The reason label of virtfleet_vm_recovery_blocked, when the wait needs a person. */
  metric?: 'no_fencing' | 'fencing_failed' | 'disks_not_shared';
}

/** Ends a reconcile early with the status computed so far (and maybe a requeue). */
class Halt {
  constructor(readonly requeueAfterMs?: number) {}
}

export class VirtualMachineReconciler implements Reconciler {
  /** By UID: the XML this process last defined, so an unchanged spec costs no define call. */
  private readonly defined = new Map<string, string>();
  /**
   * By UID: the status this process last wrote. The cache lags our own writes; a reconcile that
   * started from the older status would restart a VM twice for one request, lose a count, or
   * write an old condition back over a newer one (conditions are replaced as a list). With
   * leader election this process is the only writer of VM status, so its last write is the
   * truth until the cache shows it; after a restart the cache is all there is.
   */
  private readonly written = new Map<string, VmStatusDraft['status']>();
  /** Key → UID of the VMs in `written`, to forget them when their object is gone. */
  private readonly uidOf = new Map<string, string>();
  /** By UID: when this process asked the guest to shut down (Halted or delete). */
  private readonly shutdownSince = new Map<string, number>();
  private readonly graceMs: number;
  private readonly hostRetryMs: number;
  private readonly addressRetryMs: number;
  private readonly disks: DiskProvisioner;
  private readonly crashes = new CrashBackoff();
  private readonly migrations: MigrationJobs;
  private readonly copies: VmCopies;
  private readonly leases = new LeaseFiles();
  private readonly health: HealthProbes;
  /** By UID: when the failed host this VM is being moved off was declared failed (for the recovery metric). */
  private readonly evacuatedAt = new Map<string, number>();
  /** By UID: the reason label of its virtfleet_vm_recovery_blocked series, if any. */
  private readonly blockedMetric = new Map<string, string>();
  /** spec.install: the installs under way and the Kickstart endpoint's answers (install.ts). */
  readonly installs: InstallFlow;

  constructor(private readonly options: VirtualMachineControllerOptions) {
    this.graceMs = options.shutdownGraceMs ?? 60_000;
    this.hostRetryMs = options.hostRetryMs ?? 30_000;
    this.addressRetryMs = options.addressRetryMs ?? 15_000;
    this.disks = options.disks ?? new DiskProvisioner();
    this.migrations = new MigrationJobs((uid) => options.onMigrationEnd?.(uid));
    this.copies = new VmCopies(options.fleet);
    this.health = new HealthProbes((uid) => options.onMigrationEnd?.(uid));
    this.installs = new InstallFlow({
      client: options.client,
      vms: options.vms,
      logger: options.logger,
      event: (vm, type, reason, message) => void options.events.record(vm, type, reason, message),
      ...(options.profiles ? { profiles: options.profiles } : {}),
      ...(options.installServer ? { server: options.installServer } : {}),
      ...(options.installTimeoutMs ? { timeoutMs: options.installTimeoutMs } : {}),
      ...(options.installPxe ? { pxe: options.installPxe } : {}),
    });
  }

  async reconcile({ key }: ReconcileContext): Promise<ReconcileResult | void> {
    const vm = this.options.vms.get(key);
    if (!vm) return this.forget(key);
    const draft = new VmStatusDraft(vm);
    this.overlayWritten(vm, draft);
    if (isBeingDeleted(vm)) return this.finalize(vm, draft);
    // The finalizer goes out together with the first status write (one round trip, not two: the
    // patch tests the finalizer list, not the resourceVersion). It must be on before anything is
    // made on a host; a failure before that point only means the next reconcile adds it again.
    const finalizer = addFinalizer(this.options.client, VIRTUAL_MACHINE, vm, VM_FINALIZER).then(
      () => undefined,
      (error: unknown) => error,
    );
    let current = vm;
    try {
      const pool = this.options.pools.get(vm.spec.hostPoolRef.name);
      let placement = this.ensurePlaced(vm, pool, draft);
      if (!placement) throw new Halt();
      // Where the VM runs when status alone cannot tell (a migration ended or was interrupted,
      // or the pool's scan saw a copy elsewhere): before anything is started or moved.
      const settled = pool ? await this.settleCopies(vm, pool, draft) : undefined;
      if (settled !== undefined) throw new Halt(settled);
      const recovery = this.recoveryFor(vm, pool, placement);
      if (recovery?.go) {
        // After fencing, a copy already running on a reachable host is adopted, not replaced.
        await this.guardStart(vm, pool!, placement.host, draft);
        placement = this.placeElsewhere(vm, pool!, placement.host, draft);
        if (!placement) throw new Halt(this.hostRetryMs);
      }
      this.reportRecoveryBlocked(vm, recovery && !recovery.go ? recovery.metric : undefined);
      // Recorded before anything is made on the host: a controller that dies after the define
      // finds the domain where status says, instead of placing the VM a second time elsewhere.
      current = await this.writeStatus(current, draft);
      const finalizerError = await finalizer;
      if (finalizerError !== undefined) throw finalizerError;
      const host = this.readyHost(vm, pool, placement, draft, recovery && !recovery.go ? recovery : undefined);
      const hypervisor = this.options.fleet.hypervisor(host.uri);
      // A migration under way comes first: the domain is on two hosts meanwhile.
      const inFlight = await this.migrationInFlight(vm, hypervisor, draft);
      if (inFlight !== undefined) {
        await this.writeStatus(current, draft);
        return { requeueAfterMs: inFlight };
      }
      const disks = await this.ensureDisks(vm, pool!, host, hypervisor, draft);
      // ---- install (spec.install, install.ts): which boot to define, and whether power steps run ----
      const installContext = this.installContext(vm, pool!, hypervisor, draft);
      const install = await this.installs.prepare(installContext);
      if (install.kind === 'wait') throw new Halt(install.requeueAfterMs);
      const installer = install.kind === 'install' ? install.domain : undefined;
      await this.ensureLease(vm, pool!, hypervisor, draft);
      let domain = await this.ensureDefined(vm, pool!, host, placement, hypervisor, draft, disks, installer, REDEFINED_BECAUSE[install.kind]);
      domain = await this.installs.afterDefine(installContext, install, domain);
      if (install.kind === 'failed') {
        // Held stopped until `virtfleet vm restart`; no power steps.
        await this.writeStatus(current, draft);
        return undefined;
      }
      // ---- end of install ----
      const migrating = await this.handleMigration(vm, pool!, host, hypervisor, domain, draft);
      if (migrating !== undefined) {
        await this.writeStatus(current, draft);
        return { requeueAfterMs: migrating };
      }
      const power = await this.applyRunStrategy(vm, pool!, host.name, hypervisor, domain, draft);
      domain = power.domain;
      // A running installer is Installing, not Running (install.ts says so instead).
      if (!power.backingOff && !this.installs.report(vm, install, domain, draft)) this.reportPowerState(vm, domain, draft, power.hold);
      const addressRetry = await this.inspectRunning(vm, hypervisor, domain, draft);
      // No health probes on an installer: it would fail them and be restarted.
      if (!power.backingOff && install.kind !== 'install') await this.checkHealth(vm, hypervisor, domain, draft);
      await this.writeStatus(current, draft);
      const requeueAfterMs = minDefined(power.requeueAfterMs, addressRetry, install.kind === 'install' ? install.requeueAfterMs : undefined);
      return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
    } catch (error) {
      if (error instanceof Halt) {
        await this.writeStatus(current, draft);
        return error.requeueAfterMs === undefined ? undefined : { requeueAfterMs: error.requeueAfterMs };
      }
      if (isHypervisorError(error, 'unreachable')) {
        this.hostUnreachable(vm, draft, error.message);
        await this.writeStatus(current, draft);
        return { requeueAfterMs: this.hostRetryMs };
      }
      throw error;
    }
  }

  private installContext(vm: VmObject, pool: PoolObject, hypervisor: Hypervisor, draft: VmStatusDraft): InstallContext {
    return {
      vm,
      pool,
      hypervisor,
      draft,
      shutdownAsked: this.shutdownSince.has(vm.metadata.uid ?? ''),
      recordAction: (record) => this.recordAction(vm, draft, record),
      event: (type, reason, message) => this.event(vm, type, reason, message),
    };
  }

  /** Our own newer writes over a cache that may not show them yet (see `written`). */
  private overlayWritten(vm: VmObject, draft: VmStatusDraft): void {
    const mine = this.written.get(vm.metadata.uid ?? '');
    if (mine) draft.status = structuredClone(mine);
  }

  private forget(key: string): void {
    this.options.allocations.forgetKey(key);
    const uid = this.uidOf.get(key);
    if (uid !== undefined) {
      this.uidOf.delete(key);
      this.written.delete(uid);
      this.crashes.forget(uid);
      this.migrations.forget(uid);
      this.health.stop(uid);
      this.installs.forget(uid);
      this.leases.forget(uid);
    }
  }

  // ---- deletion path ----------------------------------------------------------------------

  /** Stops and undefines the domain on its host, releases the placement, then the finalizer. */
  private async finalize(vm: VmObject, draft: VmStatusDraft): Promise<ReconcileResult | void> {
    if (!hasFinalizer(vm, VM_FINALIZER)) return;
    const uid = vm.metadata.uid ?? '';
    const placement = this.placementOf(vm);
    if (placement) {
      const host = this.options.fleet.host(vm.spec.hostPoolRef.name, placement.host);
      draft.phase('Terminating');
      if (!host) {
        draft.set(
          C.Ready,
          'False',
          R.Terminating,
          `waiting for host ${placement.host} of HostPool ${vm.spec.hostPoolRef.name} to be connected to delete the domain; ` +
            'if the pool or host is gone for good, remove the finalizer by hand (the domain may remain on the host)',
        );
        await this.writeStatus(vm, draft);
        return { requeueAfterMs: this.hostRetryMs };
      }
      try {
        const hypervisor = this.options.fleet.hypervisor(host.uri);
        const step = await this.removeDomain(vm, hypervisor);
        if (step !== undefined) {
          draft.set(C.Ready, 'False', R.ShuttingDown, `shutting down before deletion; destroyed if still running after ${this.graceMs / 1000} s`);
          await this.writeStatus(vm, draft);
          return { requeueAfterMs: step };
        }
        await this.removeVolumes(vm, hypervisor, host.name);
        const leases = this.options.pools.get(vm.spec.hostPoolRef.name)?.spec.leases;
        if (leases) await this.leases.remove(leases, hypervisor, uid);
      } catch (error) {
        if (!isHypervisorError(error, 'unreachable')) throw error;
        draft.set(C.Ready, 'Unknown', R.HostUnreachable, `cannot delete the domain: host ${placement.host} is unreachable (${error.message}); the VM is deleted once the host answers`);
        await this.writeStatus(vm, draft);
        this.event(vm, 'Warning', E.HostUnreachable, `cannot delete the domain on ${placement.host}: ${error.message}`);
        return { requeueAfterMs: this.hostRetryMs };
      }
    }
    await this.disks.cancel(uid);
    this.options.allocations.forget(uid);
    this.defined.delete(uid);
    this.shutdownSince.delete(uid);
    this.written.delete(uid);
    this.crashes.forget(uid);
    this.migrations.forget(uid);
    this.health.stop(uid);
    this.installs.forget(uid);
    this.options.allocations.migrating.delete(uid);
    this.evacuatedAt.delete(uid);
    this.reportRecoveryBlocked(vm, undefined);
    await removeFinalizer(this.options.client, VIRTUAL_MACHINE, vm, VM_FINALIZER);
  }

  /** Undefined when the domain is gone; otherwise the delay before looking again (a shutdown is under way). */
  private async removeDomain(vm: VmObject, hypervisor: Hypervisor): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const domain = await hypervisor.lookup(uid);
    if (!domain) return undefined;
    if (!isActive(domain.state)) this.shutdownSince.delete(uid);
    const step = stopAction(domain, this.shutdownSince.get(uid), Date.now(), this.graceMs);
    const after = await this.performPower(vm, hypervisor, step);
    if (after !== undefined) return after;
    await ignoring(['not-found'], () => hypervisor.undefine(uid));
    this.event(vm, 'Normal', E.Undefined, `domain ${domain.name} removed from ${hypervisor.uri}`);
    return undefined;
  }

  /** After the domain is gone: the volumes of its disks, except those with spec.disks[].retain. */
  private async removeVolumes(vm: VmObject, hypervisor: Hypervisor, hostName: string): Promise<void> {
    const storage: StorageSpec = this.options.pools.get(vm.spec.hostPoolRef.name)?.spec.storage ?? { pool: 'default', shared: false };
    const { deleted, retained } = await this.disks.remove(vm, storage, hypervisor);
    if (deleted.length > 0) this.event(vm, 'Normal', E.VolumesDeleted, `volumes ${deleted.join(', ')} deleted from storage pool ${storage.pool} on ${hostName}`);
    if (retained.length > 0) {
      this.event(vm, 'Normal', E.VolumesRetained, `volumes ${retained.join(', ')} kept in storage pool ${storage.pool} on ${hostName} (retain: true); a VM of the same name uses them again`);
    }
  }

  // ---- placement --------------------------------------------------------------------------

  private placementOf(vm: VmObject): Placement | undefined {
    const pending = this.options.allocations.pendingFor(vm.metadata.uid ?? '');
    if (pending) return { host: pending.host, hypervisor: pending.hypervisor };
    return vm.status?.host ? { host: vm.status.host, hypervisor: vm.status.hypervisor } : undefined;
  }

  /**
   * The VM's host: from status, or placed now. Placement and the allocation record happen with
   * no await in between, so concurrent reconciles never take the same free capacity.
   */
  private ensurePlaced(vm: VmObject, pool: PoolObject | undefined, draft: VmStatusDraft): Placement | undefined {
    const placed = this.placementOf(vm);
    if (placed) {
      const pending = this.options.allocations.pendingFor(vm.metadata.uid ?? '');
      if (pending) this.recordPlacement(draft, pending);
      // Still placed, now for this generation too.
      else draft.set(C.Scheduled, 'True', R.Placed, `placed on ${placed.host}: ${vm.status?.hypervisorReason ?? 'recorded in status'}`);
      return placed;
    }
    const poolName = vm.spec.hostPoolRef.name;
    if (!pool) {
      draft.phase('Pending');
      const changed = draft.set(C.Scheduled, 'False', R.HostPoolNotFound, `HostPool ${poolName} does not exist: create it, or fix spec.hostPoolRef.name`);
      if (changed) this.event(vm, 'Warning', E.FailedScheduling, `HostPool ${poolName} does not exist`);
      return undefined;
    }
    const result = place(vmRequest(vm), this.hostStates(poolName), schedulingPolicy(pool));
    if (!result.placed) {
      draft.phase('Pending');
      const before = draft.condition(C.Scheduled)?.message;
      draft.set(C.Scheduled, 'False', R.Unschedulable, result.message);
      if (before !== result.message) this.event(vm, 'Warning', E.FailedScheduling, result.message);
      return undefined;
    }
    const record: Placed = { key: objectKey(vm), pool: poolName, host: result.host, hypervisor: result.hypervisor, reason: result.reason };
    this.options.allocations.record(vm.metadata.uid ?? '', record);
    this.recordPlacement(draft, record);
    this.event(vm, 'Normal', E.Scheduled, `placed on ${result.host} (${result.hypervisor}): ${result.reason}`);
    return { host: result.host, hypervisor: result.hypervisor };
  }

  private recordPlacement(draft: VmStatusDraft, placed: Placed): void {
    draft.status.host = placed.host;
    draft.status.hypervisor = placed.hypervisor;
    draft.status.hypervisorReason = placed.reason;
    draft.set(C.Scheduled, 'True', R.Placed, `placed on ${placed.host}: ${placed.reason}`);
    if (!draft.status.phase || draft.status.phase === 'Pending') draft.phase('Provisioning');
  }

  /** The pool's hosts as placement sees them: the Fleet's readiness and this process's allocations. */
  private hostStates(pool: string): HostState[] {
    const allocations = this.options.allocations.byHost(pool);
    return this.options.fleet
      .hosts(pool)
      .filter((host) => host.inSpec)
      .map((host) => {
        const allocated = allocations.get(host.name);
        return {
          name: host.name,
          ready: host.readiness.ready,
          maintenance: host.maintenance,
          hypervisor: host.readiness.hypervisor,
          labels: host.labels,
          capacity: { cpus: host.facts?.cpu.count ?? 0, memoryBytes: host.facts?.memoryBytes ?? 0 },
          allocated: { cpus: allocated?.cpus ?? 0, memoryBytes: allocated?.memoryBytes ?? 0 },
          antiAffinityGroups: allocated?.antiAffinityGroups ?? new Set<string>(),
        };
      });
  }

  // ---- health probes ------------------------------------------------------------------------------

  /**
   * spec.healthCheck: the probe loop runs while the domain runs (health.ts); its verdict goes to
   * the Healthy condition, and failureThreshold failures in a row restart the VM (Always,
   * RerunOnFailure) through the crash back-off, counted as reason probe.
   */
  private async checkHealth(vm: VmObject, hypervisor: Hypervisor, domain: DomainStatus, draft: VmStatusDraft): Promise<void> {
    const uid = vm.metadata.uid ?? '';
    const check = vm.spec.healthCheck;
    if (!check || domain.state !== 'running') {
      this.health.stop(uid);
      if (!check && draft.condition(C.Healthy)) draft.drop(C.Healthy);
      return;
    }
    const key = objectKey(vm);
    const poolName = vm.spec.hostPoolRef.name;
    this.health.ensure(uid, {
      check,
      resolve: () => {
        const current = this.options.vms.get(key);
        const hostName = current ? this.options.allocations.hostOf(current) : undefined;
        const host = hostName ? this.options.fleet.host(poolName, hostName) : undefined;
        if (!current || !host) return undefined;
        return { address: current.status?.addresses?.[0]?.ip, hypervisor: this.options.fleet.hypervisor(host.uri) };
      },
    });
    const verdict = this.health.verdict(uid);
    if (!verdict?.last) {
      draft.set(C.Healthy, 'Unknown', R.ProbePending, `first probe ${check.initialDelaySeconds} s after the start, then every ${check.periodSeconds} s`);
      return;
    }
    if (verdict.last.ok) {
      draft.set(C.Healthy, 'True', R.ProbeSucceeded, verdict.last.message);
      return;
    }
    const message = `${verdict.last.message} (${verdict.failures} of ${check.failureThreshold} failures in a row)`;
    draft.set(C.Healthy, 'False', R.ProbeFailed, message);
    if (verdict.failures < check.failureThreshold) return;
    draft.set(C.Ready, 'False', R.Unhealthy, `the health check failed ${verdict.failures} times in a row: ${verdict.last.message}`);
    if (vm.spec.runStrategy !== 'Always' && vm.spec.runStrategy !== 'RerunOnFailure') return;
    // Restarted like a crash (so a probe that never passes ends in CrashLoopBackOff), counted as probe.
    await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
    this.health.stop(uid);
    const verdictOfBackoff = this.crashes.failure(uid, vm.spec.recovery.restartBackoff, Date.now());
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    this.options.metrics?.vmRestarts.inc({ namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '', reason: 'probe' });
    const when = verdictOfBackoff.delayMs > 0 ? `in ${(verdictOfBackoff.delayMs / 1000).toFixed(1)} s` : 'now';
    this.event(vm, 'Warning', E.Unhealthy, `${message}; restarting the VM ${when} (restart ${draft.status.restarts})`);
    draft.phase('Stopped');
  }

  // ---- recovery from a failed host ---------------------------------------------------------------

  /**
   * Whether the VM's failed host lets it be started elsewhere now: only once the old copy is
   * known dead (the host's fencing command confirmed power-off), never on a guess. Undefined
   * while the host has not failed (ready, or only connecting / misconfigured).
   */
  private recoveryFor(vm: VmObject, pool: PoolObject | undefined, placement: Placement): RecoveryVerdict | undefined {
    if (!pool) return undefined;
    const host = this.options.fleet.host(pool.metadata.name ?? '', placement.host);
    if (!host || host.readiness.ready || !FAILED_HOST_REASONS.has(host.readiness.reason ?? '')) return undefined;
    const poolName = pool.metadata.name ?? '';
    const failure = `host ${host.name} failed (${host.readiness.reason}: ${host.readiness.message})`;
    const held = vm.metadata.annotations?.[ACTION_ANNOTATION];
    const wanted = vm.spec.recovery.evacuate && (vm.spec.runStrategy === 'Always' || vm.spec.runStrategy === 'RerunOnFailure') && held !== 'stop' && held !== 'pause';
    if (!wanted) {
      const why = !vm.spec.recovery.evacuate ? 'spec.recovery.evacuate is false' : held === 'stop' || held === 'pause' ? `it is held by ${ACTION_ANNOTATION}=${held}` : `runStrategy ${vm.spec.runStrategy} does not restart it`;
      return { go: false, reason: R.HostNotReady, message: `${failure}; the VM waits for it (${why})` };
    }
    if ((vm.spec.disks?.length ?? 0) > 0 && !pool.spec.storage.shared) {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'disks_not_shared',
        message:
          `${failure}; the VM is not started elsewhere: its disks are in storage pool ${pool.spec.storage.pool} on ${host.name} only ` +
          `(HostPool ${poolName} spec.storage.shared is false). Bring the host back, or use shared storage and set spec.storage.shared`,
      };
    }
    const declared = pool.spec.hosts.find((entry) => entry.name === host.name)?.fencing;
    const fencing = host.fencing;
    if (fencing?.state === 'Fenced') return { go: true, failedAt: host.notReadySince ?? Date.now(), fencedBy: fencing.message };
    if (declared?.method !== 'command') {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'no_fencing',
        message:
          `${failure}; the VM is not started elsewhere because its old copy may still be running there and no fencing is configured ` +
          `(HostPool ${poolName} spec.hosts[${host.name}].fencing). Configure a fencing command that powers the host off, or bring the host back`,
      };
    }
    if (fencing?.state === 'Failed') {
      return {
        go: false,
        reason: R.RecoveryBlocked,
        metric: 'fencing_failed',
        message: `${failure}; fencing it failed (attempt ${fencing.attempts}: ${fencing.message}), retried; the VM is started elsewhere once the host is fenced`,
      };
    }
    return { go: false, reason: R.RecoveryPending, message: `${failure}; fencing it (${fencing?.message ?? 'about to start'}); the VM is started elsewhere once the host is fenced` };
  }

  /** Places the VM on another host of the pool, recording the move (written before anything is made there). */
  private placeElsewhere(vm: VmObject, pool: PoolObject, from: string, draft: VmStatusDraft): Placement | undefined {
    const uid = vm.metadata.uid ?? '';
    const poolName = pool.metadata.name ?? '';
    const result = place(vmRequest(vm), this.hostStates(poolName).filter((host) => host.name !== from), schedulingPolicy(pool));
    if (!result.placed) {
      draft.phase('Unknown');
      const message = `host ${from} failed and was fenced, but no other host can take the VM: ${result.message}`;
      const before = draft.condition(C.Scheduled)?.message;
      draft.set(C.Scheduled, 'False', R.Unschedulable, message);
      draft.set(C.Ready, 'Unknown', R.RecoveryBlocked, message);
      if (before !== message) this.event(vm, 'Warning', E.FailedScheduling, message);
      return undefined;
    }
    const record: Placed = { key: objectKey(vm), pool: poolName, host: result.host, hypervisor: result.hypervisor, reason: `moved from failed host ${from}; ${result.reason}` };
    this.options.allocations.record(uid, record);
    this.recordPlacement(draft, record);
    // A fresh start on the new host: no crash to count, no old definition to compare with.
    draft.phase('Provisioning');
    draft.set(C.Provisioned, 'False', R.Evacuating, `moving to ${result.host}: host ${from} failed and was fenced`);
    this.defined.delete(uid);
    this.crashes.forget(uid);
    this.evacuatedAt.set(uid, this.options.fleet.host(poolName, from)?.notReadySince ?? Date.now());
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    this.options.metrics?.vmRestarts.inc({ namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '', reason: 'host_failure' });
    this.event(vm, 'Warning', E.Evacuated, `host ${from} failed and was fenced; starting the VM on ${result.host} (${result.reason})`);
    return { host: result.host, hypervisor: result.hypervisor };
  }

  private reportRecoveryBlocked(vm: VmObject, reason: string | undefined): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const uid = vm.metadata.uid ?? '';
    const labels = { namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '' };
    const before = this.blockedMetric.get(uid);
    if (before === reason) return;
    if (before) metrics.vmRecoveryBlocked.remove({ ...labels, reason: before });
    if (reason) {
      metrics.vmRecoveryBlocked.set({ ...labels, reason }, 1);
      this.blockedMetric.set(uid, reason);
    } else this.blockedMetric.delete(uid);
  }

  // ---- live migration (maintenance drain, `virtfleet vm migrate`) ----------------------------------

  /**
   * Settles where the VM runs by the rule of vm-location.ts when status alone cannot tell: a
   * migration of this process ended (its outcome is a hint, not the truth: a cut at the
   * switchover fails the call while the destination runs), status.migration names a migration
   * this process does not know (it restarted meanwhile; libvirt may still be running it), or the
   * pool's scan saw a live copy elsewhere. Undefined: nothing to settle, the reconcile goes on;
   * else when to look again.
   */
  private async settleCopies(vm: VmObject, pool: PoolObject, draft: VmStatusDraft): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const job = this.migrations.get(uid);
    if (job && !job.outcome) return undefined; // migrationInFlight follows it
    const poolName = pool.metadata.name ?? '';
    const ended = job?.outcome ? job : undefined; // taken out once settled: its outcome is told then
    const stray = this.options.fleet.takeStrayCopies(uid);
    const migration = draft.status.migration;
    if (!migration && !ended && stray.length === 0) return undefined;
    const sightings = await this.copies.sight(poolName, uid, [...suspectHosts(draft.status.host, migration), ...stray], new Set(stray));
    if (migration && !ended) {
      // A migration this process lost: libvirt carries on without us while the source runs it.
      const source = sightings.find((s) => s.host === migration.source);
      const sourceHost = this.options.fleet.host(poolName, migration.source);
      if (source?.reach === 'reachable' && source.domain && live(source.domain.state) && sourceHost) {
        const progress = await this.options.fleet.hypervisor(sourceHost.uri).migrationProgress(uid).catch(() => undefined);
        if (progress?.active) {
          this.options.allocations.migrating.add(uid);
          draft.phase('Migrating');
          draft.set(C.Migrating, 'True', R.Migrating, `migrating from ${migration.source} to ${migration.target}: ${progressText(progress)} (found under way after a controller restart)`);
          return MIGRATION_LOOK_MS;
        }
      }
    }
    const verdict = locate({ host: draft.status.host, migration, migrating: false, sightings });
    if (verdict.kind === 'blind') {
      for (const host of stray) this.options.fleet.reportStrayCopy(uid, host); // looked at again once it answers
      if (migration) draft.set(C.Migrating, 'False', R.MigrationUnresolved, `the migration from ${migration.source} to ${migration.target} ended; ${verdict.message}`);
      this.reportBlind(vm, poolName, verdict, draft);
      return this.hostRetryMs;
    }
    if (verdict.kind === 'migrating') return MIGRATION_LOOK_MS; // not reached: migrating is false
    await this.removeCopies(vm, poolName, verdict);
    if (ended) {
      this.migrations.takeEnded(uid);
      this.countMigration(ended);
    }
    const home = verdict.kind === 'split-brain' ? verdict.keep : verdict.host;
    if (migration) {
      delete draft.status.migration;
      this.options.allocations.migrating.delete(uid);
    }
    const asked = draft.status.lastAction?.action === 'migrate' && draft.status.lastAction.state === 'InProgress' ? draft.status.lastAction : undefined;
    if (migration && home === migration.target) {
      const message = ended?.outcome?.ok
        ? `migrated live from ${migration.source} to ${migration.target} in ${((ended.outcome.endedAt - ended.startedAt) / 1000).toFixed(1)} s`
        : `migrated from ${migration.source} to ${migration.target} (found running there: ${ended ? `the call reported "${ended.outcome?.message ?? ''}"` : 'the controller restarted meanwhile'})`;
      this.moveTo(vm, poolName, home, `migrated from ${migration.source}`, draft);
      draft.set(C.Migrating, 'False', R.Migrated, message);
      this.event(vm, 'Normal', E.Migrated, message);
      if (asked) this.recordAction(vm, draft, { id: asked.id, action: 'migrate', state: 'Succeeded', message });
      return 100;
    }
    if (migration) {
      const failures = this.migrations.failures(uid);
      const gaveUp = failures >= MIGRATION_ATTEMPTS;
      const why = ended ? `failed (attempt ${failures} of ${MIGRATION_ATTEMPTS}): ${ended.outcome?.message ?? ''}` : 'did not finish (the controller restarted meanwhile)';
      const message = `migration from ${migration.source} to ${migration.target} ${why}; ` + (gaveUp ? `gave up: the VM keeps running on ${home} (\`virtfleet vm migrate ${vm.metadata.name}\` tries again)` : 'retrying');
      if (draft.status.phase === 'Migrating') draft.phase(verdict.kind === 'settled' && !verdict.running ? 'Stopped' : 'Running');
      draft.set(C.Migrating, 'False', R.MigrationFailed, message);
      this.event(vm, 'Warning', E.MigrationFailed, message);
      if (asked && gaveUp) this.recordAction(vm, draft, { id: asked.id, action: 'migrate', state: 'Failed', message });
    }
    if (home && home !== draft.status.host && (verdict.kind === 'split-brain' || verdict.copy)) {
      const message = `found ${verdict.kind === 'split-brain' || verdict.running ? 'running' : 'defined'} on ${home}, not on ${draft.status.host ?? 'no host'} as status said; taken as it is`;
      this.moveTo(vm, poolName, home, `found on ${home}`, draft);
      this.event(vm, 'Normal', E.Adopted, message);
    }
    return 100;
  }

  /**
   * Before a copy is started where none is (a define on a host without the domain, a start, an
   * evacuation): every host of the pool is asked. A copy that runs (or is paused) elsewhere is
   * adopted instead; a host that may hold one and does not answer holds the start. Returns when
   * the start may go ahead on `host`; otherwise halts the reconcile.
   */
  private async guardStart(vm: VmObject, pool: PoolObject, host: string, draft: VmStatusDraft): Promise<void> {
    const uid = vm.metadata.uid ?? '';
    const poolName = pool.metadata.name ?? '';
    const sightings = await this.copies.sight(poolName, uid, 'all');
    const verdict = locate({ host, migration: draft.status.migration, migrating: false, sightings });
    if (verdict.kind === 'blind') {
      this.reportBlind(vm, poolName, verdict, draft);
      throw new Halt(this.hostRetryMs);
    }
    if (verdict.kind === 'migrating') throw new Halt(MIGRATION_LOOK_MS);
    const home = verdict.kind === 'split-brain' ? verdict.keep : verdict.host;
    const elsewhere = home !== host && (verdict.kind === 'split-brain' || verdict.copy);
    // Stopped copies elsewhere are left to the pool's scan, unless the VM moves to one of them.
    if (verdict.kind === 'split-brain' || (verdict.kind === 'settled' && verdict.running) || elsewhere) await this.removeCopies(vm, poolName, verdict);
    if (!elsewhere) return;
    this.moveTo(vm, poolName, home, `found on ${home}`, draft);
    const message = `found ${verdict.kind === 'split-brain' || verdict.running ? 'running' : 'defined'} on ${home} before starting it on ${host}; taken as it is, no second copy started`;
    this.event(vm, 'Normal', E.Adopted, message);
    throw new Halt(100);
  }

  /**
   * Nothing is started or removed while a host that may hold a copy is silent. Hosts still
   * connecting (a controller that just started) are only waited for; a failed one is a Warning.
   */
  private reportBlind(vm: VmObject, poolName: string, verdict: Extract<Location, { kind: 'blind' }>, draft: VmStatusDraft): void {
    const failed = verdict.hosts.some((name) => FAILED_HOST_REASONS.has(this.options.fleet.host(poolName, name)?.readiness.reason ?? ''));
    draft.phase('Unknown');
    const before = draft.condition(C.Ready)?.message;
    draft.set(C.Ready, 'Unknown', failed ? R.CopyUnknown : R.HostNotReady, verdict.message);
    if (failed && before !== verdict.message) this.event(vm, 'Warning', E.CopyUnknown, verdict.message);
  }

  /** Removes the copies a verdict does not keep; split-brain is said loudly. */
  private async removeCopies(vm: VmObject, poolName: string, verdict: Exclude<Location, { kind: 'blind' | 'migrating' }>): Promise<void> {
    if (verdict.remove.length === 0) return;
    const uid = vm.metadata.uid ?? '';
    if (verdict.kind === 'split-brain') {
      this.options.metrics?.vmSplitBrain.inc({ namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '' });
      this.event(vm, 'Warning', E.SplitBrain, verdict.message);
      this.options.logger.warn({ vm: objectKey(vm), keep: verdict.keep, remove: verdict.remove.map((r) => r.host) }, `split-brain: ${verdict.message}`);
    }
    const { removed, failed } = await this.copies.remove(poolName, uid, verdict.remove);
    for (const removal of removed) this.event(vm, verdict.kind === 'split-brain' ? 'Warning' : 'Normal', E.CopyRemoved, `copy on ${removal.host} (${removal.state}) removed: ${removal.why}`);
    for (const removal of failed) this.event(vm, 'Warning', E.CopyRemoved, `cannot remove the copy on ${removal.host} (${removal.state}; ${removal.why}): ${removal.error}; retrying`);
    if (failed.length > 0) throw new Halt(this.hostRetryMs);
  }

  /** Records that the VM lives on `host` now (allocation and status.host). */
  private moveTo(vm: VmObject, poolName: string, host: string, reason: string, draft: VmStatusDraft): void {
    const record: Placed = { key: objectKey(vm), pool: poolName, host, hypervisor: draft.status.hypervisor ?? 'kvm', reason };
    this.options.allocations.record(vm.metadata.uid ?? '', record);
    draft.status.host = host;
    this.defined.delete(vm.metadata.uid ?? '');
  }

  private countMigration(job: MigrationJob): void {
    const outcome = job.outcome!;
    const label = outcome.ok ? 'success' : outcome.aborted ? 'aborted' : 'failure';
    this.options.metrics?.migrations.inc({ outcome: label });
    this.options.metrics?.migrationDuration.observe({ outcome: label }, (outcome.endedAt - job.startedAt) / 1000);
  }

  /** A migration of this process still running: its progress in the Migrating condition. */
  private async migrationInFlight(vm: VmObject, hypervisor: Hypervisor, draft: VmStatusDraft): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const now = Date.now();
    const job = this.migrations.get(uid);
    if (job && !job.outcome) {
      if (!job.progress || now - job.progress.at >= MIGRATION_LOOK_MS) {
        job.progress = { at: now, figures: await hypervisor.migrationProgress(uid).catch(() => undefined) };
      }
      draft.phase('Migrating');
      draft.set(C.Migrating, 'True', R.Migrating, `migrating from ${job.from} to ${job.to}: ${progressText(job.progress.figures)}`);
      return MIGRATION_LOOK_MS;
    }
    return undefined;
  }

  private async handleMigration(vm: VmObject, pool: PoolObject, host: FleetHost, hypervisor: Hypervisor, domain: DomainStatus, draft: VmStatusDraft): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    const now = Date.now();
    const parsed = actionRequest(vm.metadata.annotations);
    const request = parsed && !('error' in parsed) && parsed.action === 'migrate' ? parsed : undefined;
    const last = draft.status.lastAction;
    const asked = request !== undefined && !(last?.id === request.id && last.action === 'migrate' && last.state !== 'InProgress');
    if (!asked && !host.maintenance) {
      this.migrations.reset(uid);
      if (draft.condition(C.Migrating)?.status === 'True') draft.set(C.Migrating, 'False', R.NotMigrating, 'no migration under way');
      return undefined;
    }
    if (!isActive(domain.state)) return undefined; // nothing runs to move; a start request is refused by decideAction
    if (asked && (last?.id !== request.id || last.action !== 'migrate')) {
      this.migrations.reset(uid);
      this.recordAction(vm, draft, { id: request.id, action: 'migrate', state: 'InProgress', message: 'migration asked' });
    }
    const why = asked ? 'asked' : `host ${host.name} is in maintenance`;
    const may = this.migrations.mayStart(uid, host.name, now);
    if (!may.ok) {
      if (may.reason === 'gave-up') {
        if (asked) this.recordAction(vm, draft, { id: request.id, action: 'migrate', state: 'Failed', message: may.message });
        return undefined;
      }
      if (may.reason === 'busy') draft.set(C.Migrating, 'False', R.MigrationQueued, `${why}: waiting, ${may.message}`);
      return may.retryInMs ?? MIGRATION_LOOK_MS;
    }
    const target = asked ? vm.metadata.annotations?.[MIGRATE_TO_ANNOTATION] : undefined;
    const poolName = pool.metadata.name ?? '';
    const candidates = this.hostStates(poolName).filter((state) => state.name !== host.name && (!target || state.name === target));
    if (target && candidates.length === 0) {
      this.recordAction(vm, draft, { id: request!.id, action: 'migrate', state: 'Refused', message: `no host ${target} in HostPool ${poolName} other than the VM's own (${host.name})` });
      return undefined;
    }
    const result = place(vmRequest(vm), candidates, schedulingPolicy(pool));
    if (!result.placed) {
      const message = `${why}, but no other host can take the VM: ${result.message}`;
      if (draft.condition(C.Migrating)?.message !== message) this.event(vm, 'Warning', E.MigrationFailed, message);
      draft.set(C.Migrating, 'False', R.NoDestination, message);
      if (asked) this.recordAction(vm, draft, { id: request!.id, action: 'migrate', state: 'Failed', message });
      return asked ? undefined : this.hostRetryMs;
    }
    const destination = this.options.fleet.host(poolName, result.host)!;
    // Recorded before it starts: a controller that dies meanwhile finds where the VM went.
    draft.status.migration = { source: host.name, target: result.host, started: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z') };
    draft.phase('Migrating');
    draft.set(C.Migrating, 'True', R.Migrating, `migrating from ${host.name} to ${result.host}: starting (${why})`);
    await this.writeStatus(vm, draft);
    this.options.allocations.migrating.add(uid);
    this.migrations.start({ uid, from: host.name, to: result.host, hypervisor, destinationUri: destination.uri, timeoutMs: MIGRATION_TIMEOUT_MS });
    this.event(vm, 'Normal', E.MigrationStarted, `live migration from ${host.name} to ${result.host} started (${why})`);
    return MIGRATION_LOOK_MS;
  }

  // ---- the domain on its host ---------------------------------------------------------------

  /** The VM's host when it is ready; otherwise the reconcile halts with a condition saying why. */
  private readyHost(vm: VmObject, pool: PoolObject | undefined, placement: Placement, draft: VmStatusDraft, blocked?: RecoveryWait): FleetHost {
    const poolName = vm.spec.hostPoolRef.name;
    const host = this.options.fleet.host(poolName, placement.host);
    if (pool && host?.readiness.ready && host.facts) return host;
    if (blocked) {
      draft.phase('Unknown');
      const before = draft.condition(C.Ready)?.message;
      draft.set(C.Ready, 'Unknown', blocked.reason, blocked.message);
      if (before !== blocked.message) this.event(vm, 'Warning', blocked.reason, blocked.message);
      throw new Halt(this.hostRetryMs);
    }
    const why = !pool
      ? `HostPool ${poolName} does not exist`
      : !host
        ? `host ${placement.host} is not connected yet`
        : `host ${placement.host} is not ready: ${host.readiness.reason} (${host.readiness.message})`;
    const provisioned = draft.condition(C.Provisioned)?.status === 'True';
    draft.phase(provisioned ? 'Unknown' : 'Provisioning');
    draft.set(C.Ready, provisioned ? 'Unknown' : 'False', R.HostNotReady, `${why}; the VM is handled once it is ready`);
    throw new Halt(this.hostRetryMs);
  }

  /** Defines the domain (or redefines it after a spec change) and returns its state. */
  /**
   * A volume for each of spec.disks, made before the domain is defined. An image still on its
   * way halts the reconcile with its progress in Provisioned and comes back later; a failure
   * says which disk field and which host, and is retried.
   */
  private async ensureDisks(vm: VmObject, pool: HostPool, host: FleetHost, hypervisor: Hypervisor, draft: VmStatusDraft): Promise<Record<string, DiskBacking>> {
    const result = await this.disks.provision(vm, pool.spec.storage, host.name, hypervisor);
    if (result.state === 'ready') {
      if (result.created.length > 0) {
        this.event(vm, 'Normal', E.VolumesCreated, `volumes for ${result.created.join(', ')} created in storage pool ${pool.spec.storage.pool} on ${host.name}`);
      }
      return result.disks;
    }
    const defined = draft.condition(C.Provisioned)?.status === 'True' && draft.condition(C.Provisioned)?.reason === R.Defined;
    if (!defined) draft.phase('Provisioning');
    if (result.state === 'pending') {
      draft.set(C.Provisioned, 'False', R.ProvisioningDisks, result.message);
      throw new Halt(result.requeueAfterMs);
    }
    const before = draft.condition(C.Provisioned)?.message;
    draft.set(C.Provisioned, 'False', result.reason, `${result.message}; retrying in ${Math.round(result.retryDelayMs / 1000)} s`);
    if (before === undefined || !before.startsWith(result.message)) this.event(vm, 'Warning', E.ProvisioningFailed, result.message);
    if (!defined) draft.set(C.Ready, 'False', result.reason, 'the disks cannot be made (see Provisioned)');
    throw new Halt(result.requeueAfterMs);
  }

  private async ensureDefined(
    vm: VmObject,
    pool: PoolObject,
    host: FleetHost,
    placement: Placement,
    hypervisor: Hypervisor,
    draft: VmStatusDraft,
    disks: Record<string, DiskBacking>,
    /** The installer's boot (and network) while spec.install runs (install.ts); the spec's own otherwise. */
    installer?: InstallerDomain,
    redefinedBecause = 'after a spec change',
  ): Promise<DomainStatus> {
    const uid = vm.metadata.uid ?? '';
    const type = placement.hypervisor ?? host.readiness.hypervisor;
    if (!type) throw new Halt(this.hostRetryMs); // readyHost() made sure the host has one
    let xml: string;
    let name: string;
    try {
      const source = installer ? { ...vm, spec: { ...vm.spec, ...installer.spec } } : vm;
      ({ xml, name } = domainXmlFor(source, pool.spec, type, host.facts!, disks, installer?.bootDevice));
    } catch (error) {
      if (!(error instanceof DomainSpecError)) throw error;
      this.refuseDefinition(vm, draft, error.message);
      throw new Halt();
    }
    const existing = await hypervisor.lookup(uid);
    // A VM defined before whose domain is not here: it may live elsewhere (a migration finished
    // unseen); a fresh VM's UID cannot be on any host yet.
    if (!existing && vm.status?.domainUUID) await this.guardStart(vm, pool, host.name, draft);
    const previous = this.defined.get(uid);
    if (!existing || previous !== xml) {
      try {
        await hypervisor.ensureDefined(xml);
      } catch (error) {
        if (!isHypervisorError(error, 'invalid-definition')) throw error;
        this.refuseDefinition(vm, draft, error.message);
        throw new Halt();
      }
      this.defined.set(uid, xml);
      if (!existing) this.event(vm, 'Normal', E.Defined, `domain ${name} defined on ${host.name}`);
      // After a controller restart `previous` is unknown: the define only re-syncs, no news.
      else if (previous !== undefined) this.event(vm, 'Normal', E.Redefined, `domain ${name} redefined on ${host.name} ${redefinedBecause}`);
    }
    draft.status.domainUUID = uid;
    draft.status.domainName = name;
    draft.set(C.Provisioned, 'True', R.Defined, `domain ${name} defined on ${host.name} (${type})`);
    return existing ?? (await hypervisor.state(uid));
  }

  /** The VM's lease file, before a domain with a <lease> is defined (vm-lease.ts). */
  private async ensureLease(vm: VmObject, pool: PoolObject, hypervisor: Hypervisor, draft: VmStatusDraft): Promise<void> {
    const leases = pool.spec.leases;
    if (!leases) return;
    try {
      await this.leases.ensure(leases, hypervisor, vm.metadata.uid ?? '');
    } catch (error) {
      if (isHypervisorError(error, 'unreachable')) throw error;
      const message = `cannot make the VM's lease in HostPool ${pool.metadata.name ?? ''} spec.leases: ${errorText(error)}`;
      if (draft.set(C.Provisioned, 'False', R.LeaseUnavailable, `${message}; retrying`)) this.event(vm, 'Warning', E.ProvisioningFailed, message);
      if (draft.condition(C.Ready)?.status !== 'True') draft.set(C.Ready, 'False', R.LeaseUnavailable, 'the VM\'s lease cannot be made (see Provisioned)');
      throw new Halt(this.hostRetryMs);
    }
  }

  private refuseDefinition(vm: VmObject, draft: VmStatusDraft, message: string): void {
    draft.phase('Failed');
    if (draft.set(C.Provisioned, 'False', R.InvalidDefinition, `${message}; fix the spec`)) {
      this.event(vm, 'Warning', E.DefinitionRefused, message);
    }
    draft.set(C.Ready, 'False', R.InvalidDefinition, 'the domain cannot be defined (see Provisioned)');
  }

  // ---- power ----------------------------------------------------------------------------------

  /**
   * Power per spec.runStrategy, unless an operation (virtfleet.io/action) asks otherwise; see
   * vm-actions.ts. Counts restarts after failures.
   */
  private async applyRunStrategy(
    vm: VmObject,
    pool: PoolObject,
    hostName: string,
    hypervisor: Hypervisor,
    domain: DomainStatus,
    draft: VmStatusDraft,
  ): Promise<{ domain: DomainStatus; requeueAfterMs?: number; hold?: 'stop' | 'pause'; backingOff?: boolean }> {
    const uid = vm.metadata.uid ?? '';
    const stopWasAsked = this.shutdownSince.has(uid);
    const phaseBefore = draft.status.phase;
    if (!isActive(domain.state)) this.shutdownSince.delete(uid);
    const parsed = actionRequest(vm.metadata.annotations);
    if (parsed && 'error' in parsed) this.refuseAnnotation(vm, draft, parsed.error);
    const request = parsed && !('error' in parsed) ? parsed : undefined;
    const decision = decideAction({
      request,
      last: draft.status.lastAction,
      strategy: vm.spec.runStrategy,
      domain,
      shutdownSince: this.shutdownSince.get(uid),
      now: Date.now(),
      graceMs: this.graceMs,
    });
    if (decision.record) this.recordAction(vm, draft, decision.record);
    const step = decision.power;
    if (step.action === 'none') return { domain, ...(decision.hold ? { hold: decision.hold } : {}) };
    const askedByUser = decision.record !== undefined && (decision.record.action === 'start' || decision.record.action === 'restart');
    const now = Date.now();
    if (step.action === 'start' && !askedByUser) {
      let pending = this.crashes.pending(uid, now);
      if (!pending && !stopWasAsked && wasUp(phaseBefore)) {
        const verdict = this.crashes.failure(uid, vm.spec.recovery.restartBackoff, now);
        this.countRestart(vm, draft, domain, verdict.delayMs);
        pending = { leftMs: verdict.delayMs, startAt: verdict.startAt, failures: verdict.failures, delayMs: verdict.delayMs };
      }
      if (pending && pending.leftMs > 0) {
        const message =
          `the domain went down ${pending.failures} times in a row; next start in ${(pending.delayMs / 1000).toFixed(1)} s, at ${new Date(pending.startAt).toISOString()} ` +
          `(back-off doubles from ${vm.spec.recovery.restartBackoff.initialSeconds} s up to ${vm.spec.recovery.restartBackoff.maxSeconds} s; ` +
          'see the Events and the guest\'s console for why it stops)';
        draft.phase('CrashLoopBackOff');
        if (draft.set(C.Ready, 'False', R.CrashLoopBackOff, message)) this.event(vm, 'Warning', E.CrashLoopBackOff, message);
        return { domain, requeueAfterMs: pending.leftMs, backingOff: true };
      }
    }
    // Never a second copy: a VM that ran before is started only when no host has it live.
    if (step.action === 'start' && vm.status?.domainUUID) await this.guardStart(vm, pool, hostName, draft);
    const requeueAfterMs = await this.performPower(vm, hypervisor, step);
    let recoveredFrom: number | undefined;
    if (step.action === 'start') {
      draft.set(C.Ready, 'False', R.Starting, 'starting');
      recoveredFrom = this.crashes.started(uid, now);
    }
    // Read back what the action did: the test driver and fast guests are already there.
    const after = await hypervisor.state(uid);
    if (recoveredFrom !== undefined && isActive(after.state)) this.options.metrics?.recoveryDuration.observe({ kind: 'crash' }, (Date.now() - recoveredFrom) / 1000);
    return {
      domain: after,
      ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
      ...(decision.hold ? { hold: decision.hold } : {}),
    };
  }

  private recordAction(vm: VmObject, draft: VmStatusDraft, record: NonNullable<ActionDecision['record']>): void {
    draft.status.lastAction = { ...record, time: new Date().toISOString() };
    const what = `${record.action} (${ACTION_ID_ANNOTATION}=${record.id})`;
    if (record.state === 'Refused') this.event(vm, 'Warning', E.ActionRefused, `${what} refused: ${record.message}`);
    else if (record.state === 'InProgress') this.event(vm, 'Normal', E.ActionStarted, `${what}: ${record.message}`);
    else this.event(vm, 'Normal', E.ActionDone, `${what}: ${record.message}`);
  }

  /** A malformed virtfleet.io/action annotation: said once in lastAction and an Event; nothing is done. */
  private refuseAnnotation(vm: VmObject, draft: VmStatusDraft, message: string): void {
    const id = vm.metadata.annotations?.[ACTION_ID_ANNOTATION]?.slice(0, 128) ?? '';
    const action = (vm.metadata.annotations?.[ACTION_ANNOTATION] ?? '').slice(0, 32);
    const last = draft.status.lastAction;
    if (last?.id === id && last.action === action && last.state === 'Refused') return;
    this.recordAction(vm, draft, { id, action: action as VmAction, state: 'Refused', message });
  }

  /** The domain went down without being asked (a crash, a kill, a guest power-off) and is started again. */
  private countRestart(vm: VmObject, draft: VmStatusDraft, domain: DomainStatus, delayMs: number): void {
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    const when = delayMs > 0 ? `in ${(delayMs / 1000).toFixed(1)} s` : 'now';
    this.event(
      vm,
      'Warning',
      E.Restarted,
      `domain ${domain.name} stopped without being asked (${domain.state}, ${domain.reason}); starting it again ${when} per runStrategy ${vm.spec.runStrategy} (restart ${draft.status.restarts})`,
    );
    this.options.metrics?.vmRestarts.inc({ namespace: vm.metadata.namespace ?? '', name: vm.metadata.name ?? '', reason: 'crash' });
  }

  /** Performs one power step; returns the delay before looking again when one is under way. */
  private async performPower(vm: VmObject, hypervisor: Hypervisor, step: PowerAction | ActionDecision['power']): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    switch (step.action) {
      case 'none':
        return undefined;
      case 'suspend':
        await ignoring(['invalid-state'], () => hypervisor.suspend(uid));
        this.event(vm, 'Normal', E.Paused, `paused on ${hypervisor.uri}`);
        return undefined;
      case 'resume':
        await ignoring(['invalid-state'], () => hypervisor.resume(uid));
        this.event(vm, 'Normal', E.Resumed, `resumed on ${hypervisor.uri}`);
        return undefined;
      case 'start':
        await ignoring(['invalid-state'], () => hypervisor.start(uid));
        this.event(vm, 'Normal', E.Started, `started on ${hypervisor.uri}`);
        return undefined;
      case 'shutdown':
        // The stopped event brings the VM back sooner; the requeue enforces the grace period.
        await ignoring(['invalid-state', 'not-found'], () => hypervisor.shutdown(uid));
        this.shutdownSince.set(uid, Date.now());
        this.event(vm, 'Normal', E.ShuttingDown, `asked the guest to shut down; destroyed if still running after ${step.recheckMs / 1000} s`);
        return step.recheckMs;
      case 'wait':
        return step.recheckMs;
      case 'destroy':
        await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
        this.shutdownSince.delete(uid);
        this.event(vm, 'Warning', E.Destroyed, `the guest did not shut down within ${this.graceMs / 1000} s; destroyed`);
        return undefined;
    }
  }

  /** Ready and phase from the domain's state (and from an operation that holds it stopped or paused). */
  private reportPowerState(vm: VmObject, domain: DomainStatus, draft: VmStatusDraft, hold: 'stop' | 'pause' | undefined): void {
    const name = vm.metadata.name ?? '';
    switch (domain.state) {
      case 'running':
      case 'blocked': {
        draft.phase('Running');
        draft.set(C.Ready, 'True', R.Running, `domain ${domain.name} is running`);
        const uid = vm.metadata.uid ?? '';
        const failedAt = this.evacuatedAt.get(uid);
        if (failedAt !== undefined) {
          this.evacuatedAt.delete(uid);
          this.options.metrics?.recoveryDuration.observe({ kind: 'host' }, (Date.now() - failedAt) / 1000);
        }
        return;
      }
      case 'paused':
      case 'pmsuspended':
        draft.phase('Paused');
        if (hold === 'pause') {
          draft.set(C.Ready, 'False', R.PausedByUser, `paused on request (${ACTION_ANNOTATION}=pause); \`virtfleet vm unpause ${name}\` resumes it`);
        } else {
          draft.set(C.Ready, 'False', R.Paused, `domain ${domain.name} is paused (${domain.reason})`);
        }
        return;
      case 'shutdown':
        draft.phase('Running');
        draft.set(C.Ready, 'False', R.ShuttingDown, `domain ${domain.name} is shutting down`);
        return;
      default:
        draft.phase('Stopped');
        if (hold === 'stop') {
          draft.set(C.Ready, 'False', R.StoppedByUser, `stopped on request (${ACTION_ANNOTATION}=stop); \`virtfleet vm start ${name}\` starts it again`);
        } else if (vm.spec.runStrategy === 'Manual') {
          draft.set(C.Ready, 'False', R.Stopped, `domain ${domain.name} is ${domain.state} (${domain.reason}); runStrategy Manual: \`virtfleet vm start ${name}\` starts it`);
        } else {
          draft.set(C.Ready, 'False', R.Stopped, `domain ${domain.name} is ${domain.state} (${domain.reason})`);
        }
    }
  }

  /**
   * What only a running domain tells: spec changes it can take live (memory within the maximum
   * it started with) are applied; the rest, where its live and persistent definitions still
   * differ, are RestartRequired; and its addresses. Returns when to look again for addresses not
   * known yet.
   */
  private async inspectRunning(vm: VmObject, hypervisor: Hypervisor, domain: DomainStatus, draft: VmStatusDraft): Promise<number | undefined> {
    const uid = vm.metadata.uid ?? '';
    if (!isActive(domain.state)) {
      this.setRestartRequired(vm, draft, []);
      delete draft.status.addresses;
      return undefined;
    }
    let [live, persistent] = await Promise.all([hypervisor.xml(uid), hypervisor.xml(uid, { inactive: true })]);
    const memory = liveMemoryTarget(live, persistent);
    if (memory !== undefined) {
      try {
        await hypervisor.setMemory(uid, memory);
        this.event(vm, 'Normal', E.LiveUpdated, `memory set to ${formatBytes(memory)} on the running domain ${domain.name} (spec.memory)`);
        live = await hypervisor.xml(uid);
      } catch (error) {
        // Refused live (no balloon driver in the guest, the domain just stopped): it waits for a restart.
        if (!isHypervisorError(error, 'invalid-state') && !isHypervisorError(error, 'unsupported')) throw error;
      }
    }
    this.setRestartRequired(vm, draft, fieldsAwaitingRestart(live, persistent));
    return this.refreshAddresses(vm, hypervisor, live, draft);
  }

  private setRestartRequired(vm: VmObject, draft: VmStatusDraft, fields: string[]): void {
    if (fields.length > 0) {
      const message = `${fields.join(', ')} changed; the running domain takes the change at its next start (\`virtfleet vm restart ${vm.metadata.name ?? ''}\`)`;
      if (draft.set(C.RestartRequired, 'True', R.PendingChanges, message)) this.event(vm, 'Normal', E.RestartRequired, message);
    } else if (draft.condition(C.RestartRequired)) {
      draft.set(C.RestartRequired, 'False', R.NoPendingChanges, 'the domain runs its current definition');
    }
  }

  /**
   * status.addresses: DHCP leases of the host's libvirt network first, else the guest agent.
   * While a VM with interfaces has none yet, it is looked at again after addressRetryMs; an
   * answer the host cannot give keeps what status had.
   */
  private async refreshAddresses(vm: VmObject, hypervisor: Hypervisor, liveXml: string, draft: VmStatusDraft): Promise<number | undefined> {
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
        if (!isHypervisorError(error, 'unsupported') && !isHypervisorError(error, 'failed')) throw error;
      }
      if (addresses && addresses.length > 0) break;
    }
    if (addresses && addresses.length > 0) draft.status.addresses = addresses;
    return draft.status.addresses?.length ? undefined : this.addressRetryMs;
  }

  private hostUnreachable(vm: VmObject, draft: VmStatusDraft, message: string): void {
    draft.phase('Unknown');
    if (draft.set(C.Ready, 'Unknown', R.HostUnreachable, `${message}; looking again when the host answers`)) {
      this.event(vm, 'Warning', E.HostUnreachable, message);
    }
  }

  // ---- writing ----------------------------------------------------------------------------------

  /** Writes the draft if it differs from `vm`'s status; returns the object as it now stands. */
  private async writeStatus(vm: VmObject, draft: VmStatusDraft): Promise<VmObject> {
    const status = draft.result();
    this.written.set(vm.metadata.uid ?? '', structuredClone(status));
    this.uidOf.set(objectKey(vm), vm.metadata.uid ?? '');
    await patchStatusIfChanged(this.options.client, VIRTUAL_MACHINE, vm as VmObject & { status?: Record<string, unknown> }, status as Record<string, unknown>);
    return { ...vm, status };
  }

  /** Events are best effort (the recorder never throws) and must not slow the reconcile. */
  private event(vm: VmObject, type: EventType, reason: string, message: string): void {
    void this.options.events.record(vm, type, reason, message);
  }
}

function minDefined(...values: Array<number | undefined>): number | undefined {
  const defined = values.filter((value): value is number => value !== undefined);
  return defined.length > 0 ? Math.min(...defined) : undefined;
}

function formatBytes(bytes: number): string {
  const MiB = 1024 * 1024;
  return bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${Math.round((bytes / MiB) * 10) / 10} MiB`;
}

/** The VM was up when last seen: a stop now was not its first state. */
function wasUp(phase: string | undefined): boolean {
  return phase === 'Running' || phase === 'Paused' || phase === 'CrashLoopBackOff';
}

function vmRequest(vm: VmObject): VmRequest {
  const { vcpus, memoryBytes } = vmResources(vm.spec);
  return {
    vcpus,
    memoryBytes,
    hypervisor: vm.spec.hypervisor,
    workload: vm.spec.workload,
    ...(vm.spec.placement?.hostSelector ? { hostSelector: vm.spec.placement.hostSelector as LabelSelector } : {}),
    ...(vm.spec.placement?.antiAffinityGroup ? { antiAffinityGroup: vm.spec.placement.antiAffinityGroup } : {}),
  };
}

function schedulingPolicy(pool: PoolObject): PlacementPolicy {
  const { strategy, cpuOvercommit, memoryOvercommit } = pool.spec.scheduling;
  return { strategy, cpuOvercommit, memoryOvercommit };
}

// ---- wiring -------------------------------------------------------------------------------------


/** Keys of VMs of `pool` that wait for a host (neither status.host nor a placement here). */
function unscheduledOf(vms: Informer<VmObject>, allocations: Allocations, pool: string): string[] {
  return vms
    .list()
    .filter((vm) => vm.spec.hostPoolRef.name === pool && !vm.status?.host && !allocations.pendingFor(vm.metadata.uid ?? ''))
    .map(objectKey);
}

/**
 * Where capacity or readiness may have changed: a pool changed (spec or status), a VM went away
 * (its capacity is free), or the HostPool controller changed a host's readiness. The VMs that
 * wait for a host, and those on a changed host, are reconciled again.
 */
function capacitySources(options: VirtualMachineControllerOptions): Source {
  const { vms, pools, fleet, allocations } = options;
  return async (controller, signal) => {
    const enqueueWaiting = (pool: string) => {
      for (const key of unscheduledOf(vms, allocations, pool)) controller.enqueue(key);
    };
    // A pool's status changed: maybe a failed host was fenced. Its VMs are enqueued highest
    // spec.recovery.priority first, so that they take the free capacity first.
    const enqueueFailedHosts = (pool: string) => {
      // Fenced hosts' VMs move by restart, maintenance hosts' by live migration.
      const failed = new Set(fleet.hosts(pool).filter((host) => host.fencing?.state === 'Fenced' || host.maintenance).map((host) => host.name));
      if (failed.size === 0) return;
      const stranded = vms.list().filter((vm) => vm.spec.hostPoolRef.name === pool && failed.has(allocations.hostOf(vm) ?? ''));
      stranded.sort((a, b) => b.spec.recovery.priority - a.spec.recovery.priority);
      for (const vm of stranded) controller.enqueue(objectKey(vm));
    };
    const offPools = pools.on((event) => {
      const pool = event.object.metadata.name ?? '';
      enqueueWaiting(pool);
      enqueueFailedHosts(pool);
    });
    const offVms = vms.on((event) => {
      if (event.type === 'delete') enqueueWaiting(event.object.spec.hostPoolRef.name);
    });
    const offFleet = fleet.onReadinessChange((pool, hosts) => {
      enqueueWaiting(pool);
      const changed = new Set(hosts);
      for (const vm of vms.list()) {
        const host = allocations.hostOf(vm);
        const migration = vm.status?.migration;
        const involved = (host && changed.has(host)) || (migration && (changed.has(migration.source) || changed.has(migration.target)));
        if (vm.spec.hostPoolRef.name === pool && involved) controller.enqueue(objectKey(vm));
      }
    });
    await untilAborted(signal);
    offPools();
    offVms();
    offFleet();
  };
}

/** Domain events name the domain's UUID, which is the VM's UID. */
function domainEventSource(options: VirtualMachineControllerOptions): Source {
  const { vms, fleet } = options;
  return async (controller, signal) => {
    const keyByUid = new Map<string, string>();
    for (const vm of vms.list()) keyByUid.set(vm.metadata.uid ?? '', objectKey(vm));
    const offVms = vms.on((event) => {
      const uid = event.object.metadata.uid ?? '';
      if (event.type === 'delete') keyByUid.delete(uid);
      else keyByUid.set(uid, objectKey(event.object));
    });
    const enqueue = (uid: string) => {
      const key = keyByUid.get(uid);
      if (key) controller.enqueue(key);
    };
    const offFleet = fleet.onDomainEvent(enqueue);
    const offCopies = fleet.onStrayCopy(enqueue);
    await untilAborted(signal);
    offVms();
    offFleet();
    offCopies();
  };
}

/** An image download or upload ended: the VM is reconciled at once instead of at its next look. */
function imageJobSource(options: VirtualMachineControllerOptions, jobEnds: Set<(uid: string) => void>): Source {
  return async (controller, signal) => {
    const listener = (uid: string) => {
      const vm = options.vms.list().find((candidate) => candidate.metadata.uid === uid);
      if (vm) controller.enqueue(objectKey(vm));
    };
    jobEnds.add(listener);
    await untilAborted(signal);
    jobEnds.delete(listener);
  };
}

export function virtualMachineController(options: VirtualMachineControllerOptions & { concurrency?: number; imageProgressIntervalMs?: number }): Controller {
  const jobEnds = new Set<(uid: string) => void>();
  const disks =
    options.disks ??
    new DiskProvisioner({
      ...(options.imageProgressIntervalMs ? { progressIntervalMs: options.imageProgressIntervalMs } : {}),
      ...(options.hostRetryMs ? { retryMs: options.hostRetryMs } : {}),
      onJobEnd: (uid) => {
        for (const listener of jobEnds) listener(uid);
      },
    });
  const reconciler = new VirtualMachineReconciler({
    ...options,
    disks,
    onMigrationEnd: (uid) => {
      for (const listener of jobEnds) listener(uid);
    },
  });
  return new Controller({
    name: 'virtualmachine',
    reconciler,
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    concurrency: options.concurrency ?? 16,
    sources: [watchOwn(options.vms), capacitySources(options), domainEventSource(options), imageJobSource(options, jobEnds), ...reconciler.installs.source(options.profiles)],
  });
}
