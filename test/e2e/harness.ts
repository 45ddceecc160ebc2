// The stack of an end-to-end test on the rig: its own etcd + kube-apiserver with the CRDs, a rig
// of real libvirtd hosts (test/rig), and the controller in this process (a Manager with every
// controller and a Fleet, as `virtfleet controller` runs them), with a watch of the VMs and
// HostPools to wait on. Plus the objects such tests make: HostPools of rig hosts (named rig-0,
// rig-1, …) and VMs that boot the rig's tiny guest.
//
//   const stack = new RigController({ hosts: 2, tag: 'maint' });
//   beforeAll(() => stack.start(), 180_000);
//   afterAll(async () => {
//     await stack.deleteVms(60_000);
//     await stack.stop();
//   }, 180_000);
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { HostPool } from '../../src/api/hostpool.js';
import { libvirtHypervisors } from '../../src/cli/libvirt-hypervisors.js';
import { Fleet } from '../../src/hosts/fleet.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../src/controllers/resources.js';
import { addControllers } from '../../src/controllers/setup.js';
import { repoRoot } from '../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../src/devstack/controlplane.js';
import { installCrds, kubectlOrThrow } from '../../src/devstack/crds.js';
import { freePort } from '../../src/devstack/ports.js';
import { Cache } from '../../src/runtime/cache.js';
import type { Condition } from '../../src/runtime/conditions.js';
import type { Informer } from '../../src/runtime/informer.js';
import { KubeClient, type KubeObject } from '../../src/runtime/kube-client.js';
import { Manager } from '../../src/runtime/manager.js';
import { captureLogs } from '../harness/logs.js';
import type { GuestImage } from '../rig/guest.js';
import { Rig, type RigHost } from '../rig/rig.js';

export const NAMESPACE = 'default';

export type Pool = PoolObject & { status?: HostPool['status'] };

export function condition(vm: VmObject | undefined, type: string): Condition | undefined {
  return (vm?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

/** Running, and Ready=True. */
export const isRunning = (vm: VmObject | undefined) =>
  vm?.status?.phase === 'Running' && condition(vm, 'Ready')?.status === 'True';

/** A HostPool object. */
export function hostPool(name: string, spec: Record<string, unknown>): KubeObject & { spec: Record<string, unknown> } {
  return { apiVersion: 'virtfleet.io/v1alpha1', kind: 'HostPool', metadata: { name }, spec };
}

/** A VM of the rig's tiny guest (kernel boot, 128 MiB, its console on ttyS0), in `pool`; `extra` is added to its spec. */
export function guestVm(
  name: string,
  pool: string,
  image: GuestImage,
  extra: Record<string, unknown> = {},
): KubeObject & { spec: Record<string, unknown> } {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      hostPoolRef: { name: pool },
      hypervisor: 'kvm',
      memory: '128Mi',
      kernelBoot: { kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1' },
      ...extra,
    },
  };
}

export interface RigControllerOptions {
  /** How many rig hosts. */
  hosts: number;
  /** In the temp dir's name: virtfleet-<tag>-e2e-…. */
  tag: string;
  /** Added to the message of a wait that timed out (the VMs' status, say). */
  detail?: () => string;
  /**
   * Run the controller as its own process (`virtfleet controller`, as a Deployment runs it), so
   * that a test can SIGKILL it (killController) and start it again (startController). Default:
   * in this process.
   */
  controllerProcess?: boolean;
  /**
   * Run a virtlockd per rig host with a lockspace shared by all (rig.lockspaceDir), for pools with
   * spec.leases. Default false.
   */
  leases?: boolean;
  /**
   * Apply deploy/base/vm-finalizer-policy.yaml, as a deployment does: every VM is made with the
   * controller's finalizer. Default false: most suites need no finalizer on VMs the controller
   * never saw.
   */
  finalizerPolicy?: boolean;
  /** An audit policy for the API server (ControlPlaneOptions.audit); its log at auditLogPath. */
  audit?: { policy: Record<string, unknown> };
}

export class RigController {
  /** The temp dir: the control plane's state (in control-plane/) and whatever the test puts there; removed by stop(). */
  readonly dir: string;
  /** The controller's log lines (JSON), level info and up. */
  readonly logs = captureLogs('info');
  info!: ControlPlaneInfo;
  rig!: Rig;
  client!: KubeClient;
  manager!: Manager;
  fleet!: Fleet;
  vms!: Informer<VmObject>;
  pools!: Informer<PoolObject>;
  private readonly plane: ControlPlane;
  private readonly controllerStop = new AbortController();
  private readonly watchStop = new AbortController();
  private running: Promise<void> | undefined;
  private child: ChildProcess | undefined;
  private watching: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly options: RigControllerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `virtfleet-${options.tag}-e2e-`));
    this.plane = new ControlPlane({
      stateDir: join(this.dir, 'control-plane'),
      unsafeNoFsync: true,
      ...(options.audit ? { audit: options.audit } : {}),
    });
  }

  /** The API server's audit log (options.audit). */
  get auditLogPath(): string {
    return this.plane.auditLogPath;
  }

  /**
   * Starts it all. `watch` may add the test's own handlers to the informers: they are called
   * before the waits look again, so that a wait sees what they recorded.
   */
  async start(watch?: (vms: Informer<VmObject>, pools: Informer<PoolObject>) => void): Promise<void> {
    this.info = await this.plane.start();
    await installCrds(this.info.binaries.kubectl, this.info.kubeconfig, repoRoot());
    if (this.options.finalizerPolicy)
      await kubectlOrThrow(this.info.binaries.kubectl, this.info.kubeconfig, [
        'apply',
        '-f',
        join(repoRoot(), 'deploy/base/vm-finalizer-policy.yaml'),
      ]);
    this.rig = await Rig.start({ hosts: this.options.hosts, diskLeases: this.options.leases ?? false });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(this.info.kubeconfig);
    this.client = new KubeClient(kubeConfig);
    const cache = new Cache(this.client, this.logs.logger);
    this.vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: NAMESPACE });
    this.pools = cache.informerFor<PoolObject>(HOST_POOL, {});
    watch?.(this.vms, this.pools);
    for (const informer of [this.vms, this.pools]) informer.on(() => this.poke());
    this.watching = cache.run(this.watchStop.signal);
    await cache.waitForSync();
    if (this.options.controllerProcess) {
      await this.startController();
      return;
    }
    this.manager = new Manager({ kubeConfig, logger: this.logs.logger });
    this.fleet = new Fleet(libvirtHypervisors());
    // The busybox guest ignores ACPI shutdown: destroy soon after asking.
    addControllers(this.manager, { fleet: this.fleet, logger: this.logs.logger, shutdownGraceMs: 3_000 });
    this.running = this.manager.run(this.controllerStop.signal);
  }

  /** The controller process's log (controllerProcess). */
  get controllerLog(): string {
    return join(this.dir, 'controller.log');
  }

  /** Starts `virtfleet controller` as a process (controllerProcess) and waits for /readyz. */
  async startController(): Promise<void> {
    const health = await freePort();
    const log = openSync(this.controllerLog, 'a');
    const child = spawn(
      process.execPath,
      // prettier-ignore
      ['--import', 'tsx', 'src/cli/main.ts', 'controller', '--kubeconfig', this.info.kubeconfig,
        '--health-address', `127.0.0.1:${health}`, '--metrics-address', '', '--log-level', 'info', '--shutdown-grace', '3'],
      { cwd: repoRoot(), stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.child = child;
    const tail = () => readFileSync(this.controllerLog, 'utf8').split('\n').slice(-30).join('\n');
    for (const deadline = Date.now() + 60_000; ;) {
      if (child.exitCode !== null) throw new Error(`the controller exited (code ${child.exitCode}):\n${tail()}`);
      if (
        await fetch(`http://127.0.0.1:${health}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      if (Date.now() > deadline) throw new Error(`the controller did not answer /readyz within 60 s:\n${tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** SIGKILL of the controller process (controllerProcess); resolves once it is gone. */
  async killController(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Deletes every VM (before stop(): their finalizers need the controller) and waits up to
   * `withinMs` until they are gone; one that cannot go is left to the control plane's removal.
   */
  async deleteVms(withinMs: number): Promise<void> {
    if (!this.vms) return;
    for (const vm of this.vms.list())
      await this.client.delete(VIRTUAL_MACHINE, NAMESPACE, vm.metadata.name ?? '').catch(() => undefined);
    await this.until(() => this.vms.list().length === 0, withinMs, 'VMs deleted').catch(() => undefined);
  }

  /** Stops the watch, the controller, every rig host, the control plane; removes the temp dir. */
  async stop(): Promise<void> {
    this.watchStop.abort();
    await this.watching;
    this.controllerStop.abort();
    await this.running;
    await this.killController();
    await this.fleet?.close();
    await this.rig?.teardown();
    await this.plane.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Wakes the waits (the watch does on every event). */
  poke(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /**
   * Resolves once `check` holds, looked at on every watch event and every 100 ms (for what no
   * event announces: files, /proc, log lines; a check that throws is false); rejects after `ms`.
   */
  until(check: () => boolean, ms: number, what: string | (() => string)): Promise<void> {
    return new Promise((resolve, reject) => {
      const tick = setInterval(() => look(), 100);
      const timer = setTimeout(() => {
        finish();
        const detail = this.options.detail?.();
        reject(
          new Error(`${typeof what === 'string' ? what : what()}: not within ${ms} ms${detail ? `; ${detail}` : ''}`),
        );
      }, ms);
      const finish = () => {
        clearInterval(tick);
        clearTimeout(timer);
        this.waiters.delete(look);
      };
      const look = () => {
        let ok: boolean;
        try {
          ok = check();
        } catch {
          ok = false;
        }
        if (!ok) return;
        finish();
        resolve();
      };
      this.waiters.add(look);
      look();
    });
  }

  vm(name: string): VmObject | undefined {
    return this.vms.get(`${NAMESPACE}/${name}`);
  }

  pool(name: string): Pool | undefined {
    return this.pools.get(name) as Pool | undefined;
  }

  /** Rig host `i` as a HostPool names it: rig-<i>; `extra` is added (fencing, maintenance). */
  poolHost(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { name: `rig-${i}`, uri: this.rig.hosts[i]!.uri, ...extra };
  }

  /** Every rig host, as a HostPool names them. */
  poolHosts(): Array<Record<string, unknown>> {
    return this.rig.hosts.map((_, i) => this.poolHost(i));
  }

  /** The rig host a HostPool names `name` (rig-<i>). */
  rigHost(name: string): RigHost {
    return this.rig.hosts[Number(name.replace('rig-', ''))]!;
  }
}
