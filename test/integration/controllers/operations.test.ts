// What users ask of a VM beyond its spec, on a simulated host: the operations of
// `virtfleet vm start|stop|restart|pause|unpause|delete` (driven through the CLI's own functions
// against the real API server), how each runStrategy treats a domain that went down, and the
// restart count.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CliError, runAction, runDelete } from '../../../src/cli/vm.js';
import { ACTION_ANNOTATION, ACTION_ID_ANNOTATION } from '../../../src/controllers/vm-actions.js';
import { VIRTUAL_MACHINE, type VmObject } from '../../../src/controllers/resources.js';
import { kubeconfigPath } from '../../harness/kube.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';
import { runCli, type CliRun } from '../../harness/cli.js';

const HOST: HostDecl = { name: 'ops-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };

const bench = new ControllerBench('vm-ops', { hostRetryMs: 1_000 });
let pool: string;

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('ops', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  await bench.close();
});

function flags(extra: Record<string, unknown> = {}) {
  return { namespace: bench.namespace, wait: true, timeout: '30', ...extra };
}

/** Runs a CLI operation; returns the lines it printed. */
async function vmCli(action: 'start' | 'stop' | 'restart' | 'pause' | 'unpause', name: string): Promise<string[]> {
  const lines: string[] = [];
  await runAction(action, name, flags(), (line) => lines.push(line));
  return lines;
}

async function domainOf(name: string) {
  return bench.hypervisor(HOST).state(bench.vm(name)?.metadata.uid ?? '');
}

/**
 * Makes the controller look at the VM again and waits until it has: a spec change with no effect
 * on the domain (recovery.priority) bumps the generation, and status.observedGeneration follows.
 */
async function nudge(name: string): Promise<VmObject> {
  const priority = ((bench.vm(name)!.spec.recovery?.priority ?? 0) + 1) % 1000;
  const patched = await bench.patchVm(name, { recovery: { priority } });
  return bench.untilVm(name, (v) => v.status?.observedGeneration === patched.metadata.generation, 'the change seen');
}

describe('runStrategy Manual', () => {
  it('defines the VM but leaves it stopped, saying how to start it', async () => {
    await bench.createVm('manual', pool, { runStrategy: 'Manual' });
    const vm = await bench.untilVm(
      'manual',
      (v) => v.status?.phase === 'Stopped' && condition(v, 'Provisioned')?.status === 'True',
      'Stopped and defined',
    );
    // Stopped as runStrategy Manual asks: as asked, so Ready=True (kstatus: Current), not in progress.
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'True', reason: 'Stopped' });
    expect(condition(vm, 'Reconciling')).toBeUndefined();
    expect(condition(vm, 'Ready')?.message).toMatch(/runStrategy Manual: `virtfleet vm start manual` starts it/);
    expect((await domainOf('manual')).state).toBe('shutoff');
  });

  it('starts on `vm start`, prints progress, and records the outcome in status.lastAction', async () => {
    const lines = await vmCli('start', 'manual');
    expect(lines[0]).toMatch(/^vm\/manual: asked to start \(virtfleet\.io\/action-id=.+\)$/);
    expect(lines.at(-1)).toBe('vm/manual: start done: started');
    const vm = await bench.untilVm('manual', isRunning, 'Running');
    expect(vm.status?.lastAction).toMatchObject({ action: 'start', state: 'Succeeded', message: 'started' });
    expect(vm.status?.lastAction?.id).toBe(vm.metadata.annotations?.[ACTION_ID_ANNOTATION]);
    expect(vm.status?.restarts ?? 0).toBe(0);
    expect((await domainOf('manual')).state).toBe('running');
  });

  it('is not started again by the controller after the guest shuts down', async () => {
    await bench.hypervisor(HOST).shutdown(bench.vm('manual')!.metadata.uid ?? '');
    await bench.untilVm('manual', (v) => v.status?.phase === 'Stopped', 'Stopped');
    const vm = await nudge('manual');
    expect(vm.status?.phase).toBe('Stopped');
    expect((await domainOf('manual')).state).toBe('shutoff');
    expect(vm.status?.restarts ?? 0).toBe(0);
  });
});

describe('operations on a runStrategy Always VM', () => {
  let firstId: number | null = null;

  it('runs it', async () => {
    await bench.createVm('always', pool);
    await bench.untilVm('always', isRunning, 'Running');
    firstId = (await domainOf('always')).id;
    expect(firstId).not.toBeNull();
  });

  it('restarts it cold on `vm restart` (a new domain process), without counting a failure', async () => {
    const lines = await vmCli('restart', 'always');
    expect(lines.at(-1)).toBe('vm/always: restart done: restarted');
    const vm = await bench.untilVm('always', isRunning, 'Running');
    const domain = await domainOf('always');
    expect(domain.state).toBe('running');
    expect(domain.id).not.toBe(firstId);
    expect(vm.status?.restarts ?? 0).toBe(0);
    const reasons = (await bench.events('always')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['ActionStarted', 'ShuttingDown', 'Started', 'ActionDone']));
  });

  it('keeps it stopped after `vm stop` although runStrategy is Always, and says why', async () => {
    const lines = await vmCli('stop', 'always');
    expect(lines.at(-1)).toMatch(/^vm\/always: stop done: stopped; it stays stopped until `virtfleet vm start`$/);
    expect(lines.some((line) => /Stopped: Ready=True StoppedByUser/.test(line))).toBe(true);
    const vm = await nudge('always');
    expect(vm.status?.phase).toBe('Stopped');
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'True', reason: 'StoppedByUser' });
    expect(condition(vm, 'Reconciling')).toBeUndefined();
    expect(condition(vm, 'Ready')?.message).toMatch(/`virtfleet vm start always` starts it again/);
    expect((await domainOf('always')).state).toBe('shutoff');
    expect(vm.spec.runStrategy).toBe('Always'); // the spec stays the user's
  });

  it('runs it again on `vm start`', async () => {
    await vmCli('start', 'always');
    const vm = await bench.untilVm('always', isRunning, 'Running');
    expect(vm.metadata.annotations?.[ACTION_ANNOTATION]).toBe('start');
  });

  it('pauses and unpauses it', async () => {
    await vmCli('pause', 'always');
    const paused = await bench.untilVm('always', (v) => v.status?.phase === 'Paused', 'Paused');
    expect(condition(paused, 'Ready')).toMatchObject({ status: 'True', reason: 'PausedByUser' });
    expect((await domainOf('always')).state).toBe('paused');
    expect((await nudge('always')).status?.phase).toBe('Paused');

    await vmCli('unpause', 'always');
    await bench.untilVm('always', isRunning, 'Running');
    expect((await domainOf('always')).state).toBe('running');
  });

  it('restarts it after it went down on its own, counting the restart with a Warning Event', async () => {
    const uid = bench.vm('always')!.metadata.uid ?? '';
    await bench.hypervisor(HOST).destroy(uid);
    const vm = await bench.untilVm('always', (v) => (v.status?.restarts ?? 0) === 1 && isRunning(v), 'restarted once');
    expect(vm.status?.phase).toBe('Running');
    expect((await domainOf('always')).state).toBe('running');
    const restarted = (await bench.events('always')).find((e) => e.reason === 'Restarted');
    expect(restarted).toMatchObject({ type: 'Warning' });
    expect(restarted?.message).toMatch(
      /stopped without being asked \(shutoff, destroyed\); starting it again now per runStrategy Always \(restart 1\)/,
    );
  });

  it('refuses an unknown action, naming the annotation and the fix', async () => {
    await bench.kube.patch(VIRTUAL_MACHINE, bench.namespace, 'always', {
      metadata: { annotations: { [ACTION_ANNOTATION]: 'reboot-now', [ACTION_ID_ANNOTATION]: 'x1' } },
    });
    const vm = await bench.untilVm('always', (v) => v.status?.lastAction?.id === 'x1', 'the bad request seen');
    expect(vm.status?.lastAction).toMatchObject({ action: 'reboot-now', state: 'Refused' });
    expect(vm.status?.lastAction?.message).toMatch(
      /annotation virtfleet\.io\/action="reboot-now" is not one of start, stop, restart, pause, unpause, migrate, suspend, resume; fix or remove it/,
    );
    expect(vm.status?.phase).toBe('Running'); // nothing done
  });
});

describe('runStrategy Halted and RerunOnFailure', () => {
  it('refuses `vm start` for Halted with the fix', async () => {
    await bench.createVm('halted', pool, { runStrategy: 'Halted' });
    await bench.untilVm('halted', (v) => v.status?.phase === 'Stopped', 'Stopped');
    const error = await runAction('start', 'halted', flags(), () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toBe(
      'start refused: runStrategy Halted keeps the VM stopped: set spec.runStrategy to Always or Manual in its manifest to start it',
    );
    expect((await domainOf('halted')).state).toBe('shutoff');
  });

  it('RerunOnFailure: restarts after a destroy, not after the guest powered itself off', async () => {
    await bench.createVm('rerun', pool, { runStrategy: 'RerunOnFailure' });
    await bench.untilVm('rerun', isRunning, 'Running');
    const uid = bench.vm('rerun')!.metadata.uid ?? '';
    await bench.hypervisor(HOST).destroy(uid);
    await bench.untilVm('rerun', (v) => (v.status?.restarts ?? 0) === 1 && isRunning(v), 'restarted after the destroy');

    await bench.hypervisor(HOST).shutdown(uid);
    await bench.untilVm('rerun', (v) => v.status?.phase === 'Stopped', 'Stopped by the guest');
    const vm = await nudge('rerun');
    expect(vm.status?.phase).toBe('Stopped');
    expect(vm.status?.restarts).toBe(1);
    expect((await domainOf('rerun')).state).toBe('shutoff');
  });
});

describe('vm delete', () => {
  it('deletes a VM and follows it until it is gone', async () => {
    await bench.createVm('doomed', pool);
    const vm = await bench.untilVm('doomed', isRunning, 'Running');
    const lines: string[] = [];
    await runDelete('doomed', { ...flags(), force: false }, (line) => lines.push(line));
    expect(lines.at(-1)).toBe('vm/doomed: deleted');
    expect(await bench.hypervisor(HOST).lookup(vm.metadata.uid ?? '')).toBeUndefined();
  });

  it('--force removes the finalizer when the controller cannot finish, and says what may remain', async () => {
    await bench.createVm('stuck', pool);
    const vm = await bench.untilVm('stuck', isRunning, 'Running');
    // No controller: the finalizer cannot be handled (as with a host gone for good).
    await bench.stopController();
    try {
      const unforced = await runDelete('stuck', { ...flags({ timeout: '1' }), force: false }, () => undefined).catch(
        (e: unknown) => e,
      );
      expect((unforced as Error).message).toMatch(
        /^still deleting after 1 s .*`virtfleet vm delete stuck --force` removes the object without it/,
      );
      const lines: string[] = [];
      await runDelete('stuck', { ...flags({ timeout: '1' }), force: true }, (line) => lines.push(line));
      expect(lines.join('\n')).toMatch(
        new RegExp(
          `WARNING: removing the virtfleet.io/domain finalizer without the controller. The domain vf-${bench.namespace}_stuck on ops-1`,
        ),
      );
      expect(lines.at(-1)).toBe('vm/stuck: finalizer removed; the object is gone');
      await bench.until(() => !bench.vm('stuck'), 10_000, 'stuck gone');
      // What the warning said: the domain is still on the host, running.
      expect((await bench.hypervisor(HOST).lookup(vm.metadata.uid ?? ''))?.state).toBe('running');
    } finally {
      await bench
        .hypervisor(HOST)
        .destroy(vm.metadata.uid ?? '')
        .catch(() => undefined);
      await bench
        .hypervisor(HOST)
        .undefine(vm.metadata.uid ?? '')
        .catch(() => undefined);
      await bench.startController();
    }
  });
});

/** The real `virtfleet` command, as a user runs it; never throws on a non-zero exit. */
function virtfleet(args: string[]): Promise<CliRun> {
  return runCli(args);
}

describe('names and flags are checked before anything is done', () => {
  const BAD = ['.', '..', '', 'a/b', 'a%2Fb', '%2e%2e'];

  it.each(BAD)(
    '`vm delete %j` makes no request, exits 2 naming the argument, and leaves every VM alone',
    async (name) => {
      // Read from the API server: the watch may not show a VM created a moment ago.
      const before: Array<string | undefined> = [];
      for (const vm of ['keep-1', 'keep-2']) {
        const current = await bench.kube
          .get<VmObject>(VIRTUAL_MACHINE, bench.namespace, vm)
          .catch(() => bench.createVm(vm, pool));
        before.push(current.metadata.resourceVersion);
      }
      const run = await virtfleet([
        'vm',
        'delete',
        name,
        '-n',
        bench.namespace,
        '--kubeconfig',
        kubeconfigPath(),
        '--no-wait',
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`NAME: invalid name ${JSON.stringify(name)}`);
      expect(run.stdout).toBe('');
      // Read from the API server, not the watch: both VMs there, not being deleted.
      for (const [i, vm] of ['keep-1', 'keep-2'].entries()) {
        const current = await bench.kube.get<VmObject>(VIRTUAL_MACHINE, bench.namespace, vm);
        expect(current.metadata.deletionTimestamp).toBeUndefined();
        expect(Number(current.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(before[i]));
      }
    },
  );

  it('refuses a bad name before even reading the kubeconfig: no request can have been made', async () => {
    const run = await virtfleet([
      'vm',
      'delete',
      '.',
      '-n',
      bench.namespace,
      '--kubeconfig',
      '/nonexistent/kubeconfig',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(
      "error: NAME: invalid name \".\": must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
    );
  });

  it('`vm stop NAME --timeout abc` fails on the flag before stopping anything', async () => {
    if (!bench.vm('keep-1')) await bench.createVm('keep-1', pool);
    const vm = await bench.untilVm('keep-1', isRunning, 'Running');
    const run = await virtfleet([
      'vm',
      'stop',
      'keep-1',
      '-n',
      bench.namespace,
      '--kubeconfig',
      kubeconfigPath(),
      '--timeout',
      'abc',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--timeout: "abc" is not a positive number of seconds');
    const current = await bench.kube.get<VmObject>(VIRTUAL_MACHINE, bench.namespace, 'keep-1');
    expect(current.metadata.annotations?.[ACTION_ANNOTATION]).toBeUndefined();
    expect((await bench.hypervisor(HOST).state(vm.metadata.uid ?? '')).state).toBe('running');
  });

  it('refuses a bad --namespace and --to the same way', async () => {
    const ns = await virtfleet(['vm', 'start', 'keep-1', '-n', '..', '--kubeconfig', kubeconfigPath()]);
    expect(ns.code).toBe(2);
    expect(ns.stderr).toContain('--namespace: invalid namespace ".."');
    const to = await virtfleet([
      'vm',
      'migrate',
      'keep-1',
      '-n',
      bench.namespace,
      '--kubeconfig',
      kubeconfigPath(),
      '--to',
      '../x',
    ]);
    expect(to.code).toBe(2);
    expect(to.stderr).toContain('--to: "../x" is not a host name');
  });
});
