// The controllers' test bench: a Manager with the HostPool and VirtualMachine controllers,
// run in-process against the real API server, over simulated hosts on libvirt's test driver
// (one definition file per host). Each test file gets a fresh namespace, and its HostPools a
// label only its controller serves: HostPools are cluster-scoped and other files share the
// API server.
//
// The libvirt connections outlive a controller: a test:/// host lives in the connection that
// opened it, so a "restarted" controller is a new Manager and Fleet on the same connections.
import { randomBytes } from 'node:crypto';
import type { HostPool } from '../../../src/api/hostpool.js';
import type { VirtualMachineStatus } from '../../../src/api/virtualmachine.js';
import { libvirtHypervisors } from '../../../src/cli/libvirt-hypervisors.js';
import { Fleet } from '../../../src/hosts/fleet.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../../../src/controllers/resources.js';
import { addControllers, type ControllersOptions } from '../../../src/controllers/setup.js';
import type { DomainStatus } from '../../../src/hypervisors/hypervisor.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { Cache } from '../../../src/runtime/cache.js';
import type { Condition } from '../../../src/runtime/conditions.js';
import type { Informer } from '../../../src/runtime/informer.js';
import { isNotFound, type KubeObject } from '../../../src/runtime/kube-client.js';
import { Manager } from '../../../src/runtime/manager.js';
import { captureLogs } from '../../harness/logs.js';
import { kubeConfig } from '../../harness/kube.js';
import { testHosts, type TestHostSpec, type TestHosts } from '../hypervisor/test-hosts.js';
import { client, freshNamespace, Signal } from '../runtime/fixtures.js';

const RUN_LABEL = 'virtfleet.io/test-run';
const GiB = 1024 * 1024;

export interface HostDecl {
  name: string;
  cpus: number;
  memoryGiB: number;
  hypervisor?: 'kvm' | 'xen';
  /** The host asks for this username and password (test driver <auth>). */
  auth?: { username: string; password: string };
  /** spec.hosts[].credentialsSecretRef. */
  credentialsSecretRef?: { name: string; namespace: string };
  /** The host has an active libvirt network 'default'. */
  network?: boolean;
}

export function condition(vm: { status?: { conditions?: unknown } } | undefined, type: string): Condition | undefined {
  return (vm?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

export class ControllerBench {
  readonly kube = client();
  readonly logs = captureLogs('info');
  readonly hosts: TestHosts = testHosts();
  readonly connections = new LibvirtConnectionPool();
  readonly runId = randomBytes(3).toString('hex');
  readonly changed = new Signal();
  namespace = '';
  vms!: Informer<VmObject>;
  pools!: Informer<PoolObject>;
  private readonly uris = new Map<string, string>();
  private watchStop = new AbortController();
  private watching: Promise<void> | undefined;
  private controllerStop: AbortController | undefined;
  private controllerRun: Promise<void> | undefined;
  private fleet: Fleet | undefined;
  /** The running controller's Manager (its client counts API requests). */
  manager: Manager | undefined;

  constructor(
    private readonly prefix: string,
    /** More controller options (short retry and progress intervals…). */
    private readonly controllerOptions: Partial<ControllersOptions> = {},
  ) {}

  /** A fresh namespace, a watch of it for the test's own waits, and a running controller. */
  async start(): Promise<void> {
    this.namespace = await freshNamespace(this.kube, this.prefix);
    const cache = new Cache(this.kube, this.logs.logger);
    this.vms = cache.informerFor<VmObject>(VIRTUAL_MACHINE, { namespace: this.namespace });
    this.pools = cache.informerFor<PoolObject>(HOST_POOL, { labelSelector: `${RUN_LABEL}=${this.runId}` });
    this.vms.on(() => this.changed.poke());
    this.pools.on(() => this.changed.poke());
    this.watching = cache.run(this.watchStop.signal);
    await cache.waitForSync();
    await this.startController();
  }

  async startController(): Promise<void> {
    const manager = new Manager({ kubeConfig: kubeConfig(), logger: this.logs.logger });
    this.manager = manager;
    this.fleet = new Fleet(libvirtHypervisors({ connections: this.connections }));
    addControllers(manager, {
      fleet: this.fleet,
      logger: this.logs.logger,
      namespace: this.namespace,
      hostPoolSelector: `${RUN_LABEL}=${this.runId}`,
      shutdownGraceMs: 10_000,
      // Host credential Secrets live in the test's namespace, as in the controller's own.
      credentialsNamespace: this.namespace,
      ...this.controllerOptions,
    });
    this.controllerStop = new AbortController();
    this.controllerRun = manager.run(this.controllerStop.signal);
  }

  async stopController(): Promise<void> {
    this.controllerStop?.abort();
    await this.controllerRun;
    await this.fleet?.close();
  }

  /** Deletes what the test made (VMs first: their finalizers need the controller), then stops. */
  async close(): Promise<void> {
    // VIRTFLEET_TEST_LOGS=1 shows the controller's warnings and errors, for debugging a failure.
    if (process.env.VIRTFLEET_TEST_LOGS) {
      for (const line of this.logs.lines())
        if (Number(line.level) >= 40) process.stderr.write(`${JSON.stringify(line)}\n`);
    }
    try {
      for (const vm of this.vms.list())
        await this.kube.delete(VIRTUAL_MACHINE, this.namespace, vm.metadata.name ?? '').catch(ignoreNotFound);
      await this.until(() => this.vms.list().length === 0, 60_000, 'every VM to be deleted');
      for (const pool of this.pools.list())
        await this.kube.delete(HOST_POOL, undefined, pool.metadata.name ?? '').catch(ignoreNotFound);
    } finally {
      await this.stopController();
      this.watchStop.abort();
      await this.watching;
      await this.connections.closeAll();
      this.hosts.cleanup();
    }
  }

  /** A simulated host: its own definition file, hence its own libvirt test-driver state. */
  hostUri(decl: HostDecl): string {
    let uri = this.uris.get(decl.name);
    if (!uri) {
      const spec: TestHostSpec = {
        cpus: decl.cpus,
        memoryKiB: decl.memoryGiB * GiB,
        ...(decl.auth ? { auth: decl.auth } : {}),
        ...(decl.network ? { network: true } : {}),
      };
      uri = this.hosts.host(`${this.runId}-${decl.name}`, spec);
      this.uris.set(decl.name, uri);
    }
    return uri;
  }

  poolName(name: string): string {
    return `${name}-${this.runId}`;
  }

  poolSpecHosts(hosts: HostDecl[]): Array<Record<string, unknown>> {
    return hosts.map((host) => ({
      name: host.name,
      uri: this.hostUri(host),
      ...(host.hypervisor ? { hypervisor: host.hypervisor } : {}),
      ...(host.credentialsSecretRef ? { credentialsSecretRef: host.credentialsSecretRef } : {}),
    }));
  }

  async createPool(name: string, hosts: HostDecl[], extra: Record<string, unknown> = {}): Promise<string> {
    const poolName = this.poolName(name);
    await this.kube.create(HOST_POOL, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'HostPool',
      metadata: { name: poolName, labels: { [RUN_LABEL]: this.runId } },
      spec: { hosts: this.poolSpecHosts(hosts), ...extra },
    });
    return poolName;
  }

  async createVm(name: string, pool: string, spec: Record<string, unknown> = {}): Promise<VmObject> {
    return this.kube.create<VmObject>(VIRTUAL_MACHINE, {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name, namespace: this.namespace },
      spec: {
        hostPoolRef: { name: pool },
        memory: '128Mi',
        kernelBoot: { kernel: '/var/lib/virtfleet/test/vmlinuz' },
        ...spec,
      },
    } as unknown as VmObject);
  }

  patchVm(name: string, spec: Record<string, unknown>): Promise<VmObject> {
    return this.kube.patch<VmObject>(VIRTUAL_MACHINE, this.namespace, name, { spec });
  }

  vm(name: string): VmObject | undefined {
    return this.vms.get(`${this.namespace}/${name}`);
  }

  pool(name: string): (HostPool & KubeObject) | undefined {
    return this.pools.get(name);
  }

  /** Resolves with the VM once `check` holds for it in the watch; fails with its last status. */
  async untilVm(name: string, check: (vm: VmObject) => boolean, what: string, ms = 30_000): Promise<VmObject> {
    await this.until(
      () => {
        const vm = this.vm(name);
        return vm !== undefined && check(vm);
      },
      ms,
      `${name}: ${what} (last status: ${JSON.stringify(this.vm(name)?.status)})`,
    );
    return this.vm(name)!;
  }

  async untilPool(
    name: string,
    check: (pool: HostPool & KubeObject) => boolean,
    what: string,
    ms = 30_000,
  ): Promise<HostPool & KubeObject> {
    await this.until(
      () => {
        const pool = this.pool(name);
        return pool !== undefined && check(pool);
      },
      ms,
      `${name}: ${what} (last status: ${JSON.stringify(this.pool(name)?.status)})`,
    );
    return this.pool(name)!;
  }

  until(check: () => boolean, ms: number, what: string): Promise<void> {
    return this.changed.until(check, ms, what);
  }

  /** Reconciles the running controller finished for `controller` (hostpool, virtualmachine). */
  async reconciles(controller: string): Promise<number> {
    const metric = await this.manager!.metrics.reconcileTotal.get();
    return metric.values.filter((v) => v.labels.controller === controller).reduce((sum, v) => sum + v.value, 0);
  }

  /** The domains on a simulated host, read through the same connection the controller uses. */
  domains(decl: HostDecl): Promise<DomainStatus[]> {
    return this.hypervisor(decl).listDomains();
  }

  /** A simulated host through the controller's connections (the test driver's state is per connection). */
  hypervisor(decl: HostDecl): LibvirtHypervisor {
    return new LibvirtHypervisor(this.connections, this.hostUri(decl));
  }

  /** Events recorded for the VM `name` (by UID), oldest first. */
  async events(name: string): Promise<Array<{ reason?: string; message?: string; type?: string }>> {
    const uid = this.vm(name)?.metadata.uid;
    const list = await this.kube.list<
      KubeObject & { reason?: string; message?: string; type?: string; involvedObject?: { uid?: string } }
    >({ kind: 'Event', group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: this.namespace });
    return list.items.filter((event) => event.involvedObject?.uid === uid);
  }
}

function ignoreNotFound(error: unknown): void {
  if (!isNotFound(error)) throw error;
}

/** The VM is Running with Scheduled, Provisioned and Ready all True for its current generation. */
export function isRunning(vm: VmObject): boolean {
  const generation = vm.metadata.generation;
  return (
    vm.status?.phase === 'Running' &&
    ['Scheduled', 'Provisioned', 'Ready'].every((type) => {
      const c = condition(vm, type);
      return c?.status === 'True' && c.observedGeneration === generation;
    })
  );
}

export function statusOf(vm: VmObject | undefined): VirtualMachineStatus {
  return vm?.status ?? {};
}
