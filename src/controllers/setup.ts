// Wires the HostPool and VirtualMachine controllers into a Manager: their informers in the
// shared cache, one Allocations ledger and one Fleet between them.
import type { Logger } from '../observability/logging.js';
import { EventRecorder } from '../runtime/events.js';
import type { Manager } from '../runtime/manager.js';
import { Allocations } from './allocations.js';
import type { Fleet } from './fleet.js';
import { hostPoolController } from './hostpool.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from './resources.js';
import { virtualMachineController } from './virtualmachine.js';

export interface ControllersOptions {
  fleet: Fleet;
  logger: Logger;
  /** Watch VirtualMachines of this namespace only; default all namespaces. */
  namespace?: string;
  /** Serve only the HostPools matching this label selector; default all. */
  hostPoolSelector?: string;
  /** Reconciles of different VMs that may run at once. Default 16. */
  vmConcurrency?: number;
  shutdownGraceMs?: number;
  hostRetryMs?: number;
  /** Identifies this process in Events. */
  instance?: string;
}

export function addControllers(manager: Manager, options: ControllersOptions): void {
  const { fleet, logger } = options;
  const vms = manager.cache.informerFor<VmObject>(VIRTUAL_MACHINE, options.namespace ? { namespace: options.namespace } : {});
  const pools = manager.cache.informerFor<PoolObject>(HOST_POOL, options.hostPoolSelector ? { labelSelector: options.hostPoolSelector } : {});
  const allocations = new Allocations(vms);
  const events = new EventRecorder(manager.client, {
    component: 'virtfleet-controller',
    logger,
    ...(options.instance ? { instance: options.instance } : {}),
  });
  const metrics = manager.metrics;
  manager.add(hostPoolController({ client: manager.client, pools, vms, fleet, allocations, logger, metrics }));
  manager.add(
    virtualMachineController({
      client: manager.client,
      vms,
      pools,
      fleet,
      allocations,
      events,
      logger,
      metrics,
      ...(options.vmConcurrency ? { concurrency: options.vmConcurrency } : {}),
      ...(options.shutdownGraceMs ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
      ...(options.hostRetryMs ? { hostRetryMs: options.hostRetryMs } : {}),
    }),
  );
}
