// Wires the HostPool, VirtualMachine and InstallProfile controllers into a Manager: their
// informers in the shared cache, one Allocations ledger and one Fleet between them; and the
// install endpoint, when configured.
import { EVENT_COMPONENT } from './reasons.js';
import type { Logger } from '../observability/logging.js';
import { EventRecorder } from '../runtime/events.js';
import type { Manager } from '../runtime/manager.js';
import { Allocations } from './allocations.js';
import type { Fleet } from '../hosts/fleet.js';
import { hostPoolController } from './hostpool.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from './resources.js';
import { vmSample } from './vm-metrics.js';
import { virtualMachineController } from './vm/wiring.js';
import { SECRET, type SecretObject } from './host-credentials.js';
import { INSTALL_PROFILE, installProfileController, type ProfileObject } from './installprofile.js';
import { InstallServer } from '../provisioning/install-server.js';
import { VmUsageCollector } from '../observability/vm-usage.js';
import { vmUsageSources } from './vm-usage-sources.js';
import type { PxeSettings } from '../provisioning/pxe.js';
import { VIRTUAL_MACHINE_IMAGE, type ImageObject } from './image/resource.js';
import { virtualMachineImageController } from './image/wiring.js';
import { snapshotControllers } from './snapshot/wiring.js';
import { EffectiveVms, type RawVmObject } from './template/effective-vms.js';
import { VIRTUAL_MACHINE_TEMPLATE, type TemplateObject } from './template/resource.js';
import { virtualMachineTemplateController } from './template/wiring.js';
import {
  VM_RESTORE,
  VM_SNAPSHOT,
  VM_SNAPSHOT_SCHEDULE,
  type RestoreObject,
  type ScheduleObject,
  type SnapshotObject,
} from './snapshot/types.js';

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
  /** When to look again for the addresses of a running VM with interfaces but none known. Default 15 s. */
  addressRetryMs?: number;
  /** Shortest time between two progress messages of an image download. Default 5 s. */
  imageProgressIntervalMs?: number;
  /** Time between two scans of a host for orphan domains (besides first contact, reconnects and domain events). Default 5 min. */
  orphanScanIntervalMs?: number;
  /**
   * The namespace host credential Secrets must be in: the controller's own (the RBAC in deploy/
   * lets it read Secrets there only). Default $POD_NAMESPACE, else virtfleet-system.
   */
  credentialsNamespace?: string;
  /** Identifies this process in Events. */
  instance?: string;
  /** How often a valid InstallProfile's Secrets are read again (they are not watched). Default 5 min. */
  installProfileResyncMs?: number;
  /** How soon an InstallProfile whose Secret is missing or unusable looks again. Default 30 s. */
  installProfileSecretRetryMs?: number;
  /**
   * The install endpoint that serves installing VMs their Kickstart (runs on the leader only).
   * Unset: none, and VMs with spec.install wait (Installed=False, InstallEndpointUnavailable).
   */
  installEndpoint?: {
    /** HOST:PORT to listen on (port 0: any free one). */
    address: string;
    /** The URL guests reach it at, when that is not http(s)://HOST:PORT (NAT, a Service). */
    urlBase?: string;
    /** Serve HTTPS with these PEM files. */
    tls?: { certFile: string; keyFile: string };
  };
  /** Overrides every InstallProfile's spec.timeoutMinutes (tests). */
  installTimeoutMs?: number;
  /** The install network and PXE pool the controller manages on each host (defaults: PXE_DEFAULTS). */
  installPxe?: Partial<PxeSettings>;
}

export function addControllers(manager: Manager, options: ControllersOptions): void {
  const { fleet, logger } = options;
  const rawVms = manager.cache.informerFor<RawVmObject>(
    VIRTUAL_MACHINE,
    options.namespace ? { namespace: options.namespace } : {},
  );
  // Every controller sees each VM with its effective spec: its VirtualMachineTemplate merged in.
  const templates = manager.cache.informerFor<TemplateObject>(
    VIRTUAL_MACHINE_TEMPLATE,
    options.namespace ? { namespace: options.namespace } : {},
  );
  const vms = new EffectiveVms(manager.client, logger, rawVms, templates);
  manager.add(virtualMachineTemplateController({ client: manager.client, templates, vms: rawVms, logger }));
  const pools = manager.cache.informerFor<PoolObject>(
    HOST_POOL,
    options.hostPoolSelector ? { labelSelector: options.hostPoolSelector } : {},
  );
  const credentialsNamespace = options.credentialsNamespace ?? process.env.POD_NAMESPACE ?? 'virtfleet-system';
  // Only the controller's namespace, and not the service-account tokens there.
  const secrets = manager.cache.informerFor<SecretObject>(SECRET, {
    namespace: credentialsNamespace,
    fieldSelector: 'type!=kubernetes.io/service-account-token',
  });
  const allocations = new Allocations(vms);
  const events = new EventRecorder(manager.client, {
    component: EVENT_COMPONENT,
    logger,
    registry: manager.metrics.registry,
    ...(options.instance ? { instance: options.instance } : {}),
  });
  const metrics = manager.metrics;
  // Every request of the process goes through manager.client: cache, leader election, controllers.
  metrics.observeKubeClient(manager.client);
  metrics.observeVms(() => vms.list().map(vmSample));
  // Per-VM CPU, memory, disk and network figures: one bulk statistics call per host at each scrape.
  new VmUsageCollector(vmUsageSources(fleet, pools, vms), metrics.registry, { logger });
  manager.add(
    hostPoolController({
      client: manager.client,
      pools,
      vms,
      fleet,
      allocations,
      logger,
      metrics,
      secrets,
      credentialsNamespace,
      events,
      ...(options.namespace ? { vmNamespace: options.namespace } : {}),
      ...(options.orphanScanIntervalMs ? { orphanScanIntervalMs: options.orphanScanIntervalMs } : {}),
    }),
  );
  const profiles = manager.cache.informerFor<ProfileObject>(
    INSTALL_PROFILE,
    options.namespace ? { namespace: options.namespace } : {},
  );
  const installServer = options.installEndpoint ? new InstallServer({ ...options.installEndpoint, logger }) : undefined;
  if (installServer) manager.add(installServer);
  manager.add(
    installProfileController({
      client: manager.client,
      profiles,
      events,
      logger,
      metrics,
      ...(options.installProfileResyncMs ? { resyncMs: options.installProfileResyncMs } : {}),
      ...(options.installProfileSecretRetryMs ? { secretRetryMs: options.installProfileSecretRetryMs } : {}),
    }),
  );
  // VirtualMachineImages (issue 17): imported by their own controller, read by the VM controller's disks.
  const images = manager.cache.informerFor<ImageObject>(
    VIRTUAL_MACHINE_IMAGE,
    options.namespace ? { namespace: options.namespace } : {},
  );
  manager.add(virtualMachineImageController({ client: manager.client, images, vms, pools, fleet, events, logger }));
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
      ...(options.addressRetryMs ? { addressRetryMs: options.addressRetryMs } : {}),
      ...(options.imageProgressIntervalMs ? { imageProgressIntervalMs: options.imageProgressIntervalMs } : {}),
      imageLookup: (namespace: string, name: string) => images.get(`${namespace}/${name}`),
      templateUse: (vm: VmObject) => vms.templateUse(vm),
      profiles,
      ...(installServer ? { installServer } : {}),
      ...(options.installTimeoutMs ? { installTimeoutMs: options.installTimeoutMs } : {}),
      ...(options.installPxe ? { installPxe: options.installPxe } : {}),
    }),
  );
  // VirtualMachineSnapshot, VirtualMachineRestore and VirtualMachineSnapshotSchedule (issue 16).
  const scope = options.namespace ? { namespace: options.namespace } : {};
  for (const controller of snapshotControllers({
    client: manager.client,
    snapshots: manager.cache.informerFor<SnapshotObject>(VM_SNAPSHOT, scope),
    restores: manager.cache.informerFor<RestoreObject>(VM_RESTORE, scope),
    schedules: manager.cache.informerFor<ScheduleObject>(VM_SNAPSHOT_SCHEDULE, scope),
    vms,
    fleet,
    logger,
    metrics,
    events,
    ...(options.hostRetryMs ? { hostRetryMs: options.hostRetryMs } : {}),
  }))
    manager.add(controller);
}
