// The controllers for the web console's test, in-process on the test's own control plane, over
// simulated hosts (libvirt's test driver, one definition file per host), so what the pages ask
// (actions, maintenance, deletion) is taken up for real and its outcome and Events come from
// the controller itself. It serves only `namespace` and the HostPools labelled for it, so the
// console test's other VMs keep the status the test gives them.
import type { KubeConfig } from '@kubernetes/client-node';
import { libvirtHypervisors } from '../../../src/cli/libvirt-hypervisors.js';
import { addControllers } from '../../../src/controllers/setup.js';
import { Fleet } from '../../../src/hosts/fleet.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { Manager } from '../../../src/runtime/manager.js';
import { captureLogs } from '../../harness/logs.js';
import { testHosts } from '../hypervisor/test-hosts.js';

export const POOL_LABEL = 'virtfleet.io/web-test';

export class WebTestController {
  readonly hosts = testHosts();
  private readonly connections = new LibvirtConnectionPool();
  private readonly logs = captureLogs('info');
  private readonly stop = new AbortController();
  private fleet: Fleet | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
  ) {}

  /** A simulated host of 4 CPUs and 4 GiB: its test:/// URI. */
  host(name: string): string {
    return this.hosts.host(name, { cpus: 4, memoryKiB: 4 * 1024 * 1024 });
  }

  start(): void {
    const manager = new Manager({ kubeConfig: this.kubeConfig, logger: this.logs.logger });
    this.fleet = new Fleet(libvirtHypervisors({ connections: this.connections }));
    addControllers(manager, {
      fleet: this.fleet,
      logger: this.logs.logger,
      namespace: this.namespace,
      hostPoolSelector: `${POOL_LABEL}=yes`,
      shutdownGraceMs: 5_000,
      hostRetryMs: 1_000,
      credentialsNamespace: this.namespace,
    });
    this.running = manager.run(this.stop.signal);
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.running;
    await this.fleet?.close();
    await this.connections.closeAll();
    this.hosts.cleanup();
    if (process.env.VIRTFLEET_TEST_LOGS)
      for (const line of this.logs.lines())
        if (Number(line.level) >= 40) process.stderr.write(`${JSON.stringify(line)}\n`);
  }
}
