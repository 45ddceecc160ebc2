// Step: health — probe verdicts and restarts of unhealthy guests (DESIGN.md "Failure model":
// its "health controller" is this step of the VM reconciler, with the power and recovery steps).
// spec.healthCheck: the probe loop runs in the background while the domain runs (../health.ts);
// its verdict goes to the Healthy condition, and failureThreshold failures in a row restart the
// VM (Always, RerunOnFailure) through the crash back-off, counted as reason probe. Crash
// restarts are the power step's; a failed host's VMs are the recovery step's.
import { ignoring, type DomainStatus, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { objectKey } from '../../runtime/informer.js';
import { HealthProbes } from '../health.js';
import { VM_CONDITIONS as C, VM_EVENTS as E, VM_REASONS as R } from '../reasons.js';
import type { VmObject } from '../resources.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { VmKit } from './kit.js';

export class HealthStep {
  private readonly probes: HealthProbes;

  constructor(private readonly kit: VmKit) {
    this.probes = new HealthProbes((uid) => kit.options.wake?.(uid));
  }

  async check(vm: VmObject, hypervisor: Hypervisor, domain: DomainStatus, draft: VmStatusDraft): Promise<void> {
    const { options } = this.kit;
    const uid = vm.metadata.uid ?? '';
    const check = vm.spec.healthCheck;
    if (!check || domain.state !== 'running') {
      this.probes.stop(uid);
      if (!check && draft.condition(C.Healthy)) draft.drop(C.Healthy);
      return;
    }
    const key = objectKey(vm);
    const poolName = vm.spec.hostPoolRef.name;
    this.probes.ensure(uid, {
      check,
      resolve: () => {
        const current = options.vms.get(key);
        const hostName = current ? options.allocations.hostOf(current) : undefined;
        const host = hostName ? options.fleet.host(poolName, hostName) : undefined;
        if (!current || !host) return undefined;
        return { address: current.status?.addresses?.[0]?.ip, hypervisor: options.fleet.hypervisor(host.uri) };
      },
    });
    const verdict = this.probes.verdict(uid);
    if (!verdict?.last) {
      draft.set(
        C.Healthy,
        'Unknown',
        R.ProbePending,
        `first probe ${check.initialDelaySeconds} s after the start, then every ${check.periodSeconds} s`,
      );
      return;
    }
    if (verdict.last.ok) {
      draft.set(C.Healthy, 'True', R.ProbeSucceeded, verdict.last.message);
      return;
    }
    const message = `${verdict.last.message} (${verdict.failures} of ${check.failureThreshold} failures in a row)`;
    draft.set(C.Healthy, 'False', R.ProbeFailed, message);
    if (verdict.failures < check.failureThreshold) return;
    draft.set(
      C.Ready,
      'False',
      R.Unhealthy,
      `the health check failed ${verdict.failures} times in a row: ${verdict.last.message}`,
    );
    if (vm.spec.runStrategy !== 'Always' && vm.spec.runStrategy !== 'RerunOnFailure') return;
    // Restarted like a crash (so a probe that never passes ends in CrashLoopBackOff), counted as probe.
    await ignoring(['invalid-state', 'not-found'], () => hypervisor.destroy(uid));
    this.probes.stop(uid);
    const backoff = this.kit.crashes.failure(uid, vm.spec.recovery.restartBackoff, this.kit.now());
    draft.status.restarts = (draft.status.restarts ?? 0) + 1;
    options.metrics?.vmRestarts.inc({ ...this.kit.labels(vm), reason: 'probe' });
    const when = backoff.delayMs > 0 ? `in ${(backoff.delayMs / 1000).toFixed(1)} s` : 'now';
    this.kit.event(
      vm,
      'Warning',
      E.Unhealthy,
      `${message}; restarting the VM ${when} (restart ${draft.status.restarts})`,
    );
    draft.phase('Stopped');
  }

  forget(uid: string): void {
    this.probes.stop(uid);
  }
}
