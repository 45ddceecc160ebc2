// Step: where the VM's copies are, by the one location rule (location.ts). Run early in every
// reconcile where status alone cannot tell (a migration ended or was interrupted, or the pool's
// scan saw a live copy elsewhere), and before anything starts a copy (guardStart: a define on a
// host without the domain, a start, an evacuation). Writes status.host (adoption), Migrating at
// a migration's end, Ready=Unknown while a host that may hold a copy is silent.
import { objectKey } from '../../runtime/informer.js';
import type { Placed } from '../allocations.js';
import { FAILED_HOST_REASONS } from '../pool-status.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import { VmCopies } from './host-copies.js';
import { Halt, type VmKit } from './kit.js';
import { live, locate, suspectHosts, type Location } from './location.js';
import { MIGRATION_ATTEMPTS, progressText, type MigrationJob, type MigrationJobs } from './migration-jobs.js';
import { settleCopies, vmVolumeNames } from './migration-storage.js';
import { MIGRATION_LOOK_MS } from './options.js';

export class CopiesStep {
  private readonly copies: VmCopies;

  constructor(
    private readonly kit: VmKit,
    private readonly migrations: MigrationJobs,
  ) {
    this.copies = new VmCopies(kit.options.fleet);
  }

  /**
   * Settles where the VM runs when status alone cannot tell: a migration of this process ended
   * (its outcome is a hint, not the truth: a cut at the switchover fails the call while the
   * destination runs), status.migration names a migration this process does not know (it
   * restarted meanwhile; libvirt may still be running it), or the pool's scan saw a live copy
   * elsewhere. Undefined: nothing to settle, the reconcile goes on; else when to look again.
   */
  async settle(vm: VmObject, pool: PoolObject, draft: VmStatusDraft): Promise<number | undefined> {
    const { fleet, allocations } = this.kit.options;
    const uid = vm.metadata.uid ?? '';
    const job = this.migrations.get(uid);
    if (job && !job.outcome) return undefined; // the migration step follows it
    const poolName = pool.metadata.name ?? '';
    const ended = job?.outcome ? job : undefined; // taken out once settled: its outcome is told then
    const stray = fleet.takeStrayCopies(uid);
    const migration = draft.status.migration;
    if (!migration && !ended && stray.length === 0) return undefined;
    const sightings = await this.copies.sight(
      poolName,
      uid,
      [...suspectHosts(draft.status.host, migration), ...stray],
      new Set(stray),
    );
    if (migration && !ended) {
      // A migration this process lost: libvirt carries on without us while the source runs it.
      const source = sightings.find((s) => s.host === migration.source);
      const sourceHost = fleet.host(poolName, migration.source);
      if (source?.reach === 'reachable' && source.domain && live(source.domain.state) && sourceHost) {
        const progress = await fleet
          .hypervisor(sourceHost.uri)
          .migrationProgress(uid)
          .catch(() => undefined);
        if (progress?.active) {
          allocations.migrating.add(uid);
          draft.phase('Migrating');
          draft.set(
            C.Migrating,
            'True',
            R.Migrating,
            `migrating from ${migration.source} to ${migration.target}: ${progressText(progress)} (found under way after a controller restart)`,
          );
          return MIGRATION_LOOK_MS;
        }
      }
    }
    const verdict = locate({ host: draft.status.host, migration, migrating: false, sightings });
    if (verdict.kind === 'blind') {
      for (const host of stray) fleet.reportStrayCopy(uid, host); // looked at again once it answers
      if (migration)
        draft.set(
          C.Migrating,
          'False',
          R.MigrationUnresolved,
          `the migration from ${migration.source} to ${migration.target} ended; ${verdict.message}`,
        );
      this.reportBlind(vm, poolName, verdict, draft);
      return this.kit.hostRetryMs;
    }
    if (verdict.kind === 'migrating') return MIGRATION_LOOK_MS; // not reached: migrating is false
    await this.removeCopies(vm, poolName, verdict);
    if (ended) {
      this.migrations.takeEnded(uid);
      this.countMigration(vm, ended);
    }
    const home = verdict.kind === 'split-brain' ? verdict.keep : verdict.host;
    // A storage-copy migration this process did not run to its end (it restarted meanwhile):
    // the copies on the side the VM did not end on go, as the job would have done.
    if (migration?.storage === 'Copied' && !ended && home) await this.settleLostCopy(vm, pool, migration, home);
    if (migration) {
      delete draft.status.migration;
      allocations.migrating.delete(uid);
    }
    const asked =
      draft.status.lastAction?.action === 'migrate' && draft.status.lastAction.state === 'InProgress'
        ? draft.status.lastAction
        : undefined;
    if (migration && home === migration.target) {
      const message = ended?.outcome?.ok
        ? `migrated live from ${migration.source} to ${migration.target} in ${((ended.outcome.endedAt - ended.startedAt) / 1000).toFixed(1)} s`
        : `migrated from ${migration.source} to ${migration.target} (found running there: ${ended ? `the call reported "${ended.outcome?.message ?? ''}"` : 'the controller restarted meanwhile'})`;
      this.moveTo(vm, poolName, home, `migrated from ${migration.source}`, draft);
      draft.set(C.Migrating, 'False', R.Migrated, message);
      this.kit.event(vm, 'Normal', E.Migrated, message);
      if (asked) this.kit.recordAction(vm, draft, { id: asked.id, action: 'migrate', state: 'Succeeded', message });
      return 100;
    }
    if (migration) {
      const failures = this.migrations.failures(uid);
      const gaveUp = failures >= MIGRATION_ATTEMPTS;
      const why = ended
        ? `failed (attempt ${failures} of ${MIGRATION_ATTEMPTS}): ${ended.outcome?.message ?? ''}`
        : 'did not finish (the controller restarted meanwhile)';
      const message =
        `migration from ${migration.source} to ${migration.target} ${why}; ` +
        (gaveUp
          ? `gave up: the VM keeps running on ${home} (\`virtfleet vm migrate ${vm.metadata.name}\` tries again)`
          : 'retrying');
      if (draft.status.phase === 'Migrating')
        draft.phase(verdict.kind === 'settled' && !verdict.running ? 'Stopped' : 'Running');
      draft.set(C.Migrating, 'False', gaveUp ? R.MigrationGaveUp : R.MigrationFailed, message);
      this.kit.event(vm, 'Warning', E.MigrationFailed, message);
      if (asked && gaveUp)
        this.kit.recordAction(vm, draft, { id: asked.id, action: 'migrate', state: 'Failed', message });
    }
    if (home && home !== draft.status.host && (verdict.kind === 'split-brain' || verdict.copy)) {
      const message = `found ${verdict.kind === 'split-brain' || verdict.running ? 'running' : 'defined'} on ${home}, not on ${draft.status.host ?? 'no host'} as status said; taken as it is`;
      this.moveTo(vm, poolName, home, `found on ${home}`, draft);
      this.kit.event(vm, 'Normal', E.Adopted, message);
    }
    return 100;
  }

  /**
   * Before a copy is started where none is (a define on a host without the domain, a start, an
   * evacuation): every host of the pool is asked. A copy that runs (or is paused) elsewhere is
   * adopted instead; a host that may hold one and does not answer holds the start, unless it is
   * in `leased` (its copy would hold the VM's lease, so the lock manager decides). Returns when
   * the start may go ahead on `host`; otherwise halts the reconcile.
   */
  async guardStart(
    vm: VmObject,
    pool: PoolObject,
    host: string,
    draft: VmStatusDraft,
    leased: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const uid = vm.metadata.uid ?? '';
    const poolName = pool.metadata.name ?? '';
    const sightings = await this.copies.sight(poolName, uid, 'all', new Set(), leased);
    const verdict = locate({ host, migration: draft.status.migration, migrating: false, sightings });
    if (verdict.kind === 'blind') {
      this.reportBlind(vm, poolName, verdict, draft);
      throw new Halt(this.kit.hostRetryMs);
    }
    if (verdict.kind === 'migrating') throw new Halt(MIGRATION_LOOK_MS);
    const home = verdict.kind === 'split-brain' ? verdict.keep : verdict.host;
    const elsewhere = home !== host && (verdict.kind === 'split-brain' || verdict.copy);
    // Stopped copies elsewhere are left to the pool's scan, unless the VM moves to one of them.
    if (verdict.kind === 'split-brain' || (verdict.kind === 'settled' && verdict.running) || elsewhere)
      await this.removeCopies(vm, poolName, verdict);
    if (!elsewhere) return;
    this.moveTo(vm, poolName, home, `found on ${home}`, draft);
    const message = `found ${verdict.kind === 'split-brain' || verdict.running ? 'running' : 'defined'} on ${home} before starting it on ${host}; taken as it is, no second copy started`;
    this.kit.event(vm, 'Normal', E.Adopted, message);
    throw new Halt(100);
  }

  /**
   * Nothing is started or removed while a host that may hold a copy is silent. Hosts still
   * connecting (a controller that just started) are only waited for; a failed one is a Warning.
   */
  private reportBlind(
    vm: VmObject,
    poolName: string,
    verdict: Extract<Location, { kind: 'blind' }>,
    draft: VmStatusDraft,
  ): void {
    const failed = verdict.hosts.some((name) =>
      FAILED_HOST_REASONS.has(this.kit.options.fleet.host(poolName, name)?.verdict.readiness.reason ?? ''),
    );
    draft.phase('Unknown');
    const before = draft.condition(C.Ready)?.message;
    draft.set(C.Ready, 'Unknown', failed ? R.CopyUnknown : R.HostNotReady, verdict.message);
    if (failed && before !== verdict.message) this.kit.event(vm, 'Warning', E.CopyUnknown, verdict.message);
  }

  /** Removes the copies a verdict does not keep; split-brain is said loudly. */
  private async removeCopies(
    vm: VmObject,
    poolName: string,
    verdict: Exclude<Location, { kind: 'blind' | 'migrating' }>,
  ): Promise<void> {
    if (verdict.remove.length === 0) return;
    const uid = vm.metadata.uid ?? '';
    if (verdict.kind === 'split-brain') {
      this.kit.options.metrics?.vmSplitBrain.inc(this.kit.labels(vm));
      this.kit.event(vm, 'Warning', E.SplitBrain, verdict.message);
      this.kit.options.logger.warn(
        { vm: objectKey(vm), keep: verdict.keep, remove: verdict.remove.map((r) => r.host) },
        `split-brain: ${verdict.message}`,
      );
    }
    const { removed, failed } = await this.copies.remove(poolName, uid, verdict.remove);
    for (const removal of removed)
      this.kit.event(
        vm,
        verdict.kind === 'split-brain' ? 'Warning' : 'Normal',
        E.CopyRemoved,
        `copy on ${removal.host} (${removal.state}) removed: ${removal.why}`,
      );
    for (const removal of failed)
      this.kit.event(
        vm,
        'Warning',
        E.CopyRemoved,
        `cannot remove the copy on ${removal.host} (${removal.state}; ${removal.why}): ${removal.error}; retrying`,
      );
    if (failed.length > 0) throw new Halt(this.kit.hostRetryMs);
  }

  private async settleLostCopy(
    vm: VmObject,
    pool: PoolObject,
    migration: NonNullable<VmStatusDraft['status']['migration']>,
    home: string,
  ): Promise<void> {
    const poolName = pool.metadata.name ?? '';
    const end = (name: string) => {
      const host = this.kit.options.fleet.host(poolName, name);
      return host ? { name, hypervisor: this.kit.options.fleet.hypervisor(host.uri) } : undefined;
    };
    const source = end(migration.source);
    const target = end(migration.target);
    if (!source || !target) return;
    const ok = home === migration.target;
    const settled = await settleCopies(
      vm.metadata.uid ?? '',
      pool.spec.storage.pool,
      vmVolumeNames(vm),
      ok,
      source,
      target,
    ).catch((error: unknown) => `cannot remove the volumes the migration left: ${String(error)}`);
    this.kit.event(vm, settled.startsWith('volumes ') ? 'Normal' : 'Warning', E.VolumesDeleted, settled);
  }

  /** Records that the VM lives on `host` now (allocation and status.host). */
  private moveTo(vm: VmObject, poolName: string, host: string, reason: string, draft: VmStatusDraft): void {
    const record: Placed = {
      key: objectKey(vm),
      pool: poolName,
      host,
      hypervisor: draft.status.hypervisor ?? 'kvm',
      reason,
    };
    this.kit.options.allocations.record(vm.metadata.uid ?? '', record);
    draft.status.host = host;
    delete this.kit.memory(vm).defined;
  }

  private countMigration(vm: VmObject, job: MigrationJob): void {
    const outcome = job.outcome!;
    const label = outcome.ok ? 'success' : outcome.aborted ? 'aborted' : 'failure';
    const { namespace = '', name = '' } = vm.metadata;
    this.kit.options.metrics?.migrations.inc({ namespace, name, outcome: label });
    this.kit.options.metrics?.migrationDuration.observe({ outcome: label }, (outcome.endedAt - job.startedAt) / 1000);
  }
}
