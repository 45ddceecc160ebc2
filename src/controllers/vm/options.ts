// What the VirtualMachine controller is built from, and its timings.
import type { Logger } from '../../observability/logging.js';
import type { ControllerMetrics } from '../../observability/metrics.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { InstallServer } from '../../provisioning/install-server.js';
import type { PxeSettings } from '../../provisioning/pxe.js';
import type { Allocations } from '../allocations.js';
import type { Fleet } from '../../hosts/fleet.js';
import type { ProfileObject } from '../installprofile.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { DiskProvisioner } from '../vm-storage.js';
import type { TemplateUse } from '../template/effective-vms.js';

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
  /**
   * Called with a VM's UID when something this controller runs in the background needs the VM
   * looked at again: a migration ended, a health verdict changed (the wiring enqueues it).
   */
  wake?: (uid: string) => void;
  /** Makes the disks' volumes; default one of the reconciler's own. */
  disks?: DiskProvisioner;
  /** How each VM took its VirtualMachineTemplate (../template/effective-vms.ts); unset: no VM has one. */
  templateUse?: (vm: VmObject) => TemplateUse;
  /** InstallProfiles, for VMs with spec.install (install/flow.ts). */
  profiles?: Informer<ProfileObject>;
  /** The endpoint that serves installing VMs their Kickstart; without it, installs wait. */
  installServer?: InstallServer;
  /** Overrides the profiles' spec.timeoutMinutes (tests). */
  installTimeoutMs?: number;
  /** The install network and PXE pool on the hosts (defaults: src/provisioning/pxe.ts PXE_DEFAULTS). */
  installPxe?: Partial<PxeSettings>;
  /** The clock decisions read (epoch ms); tests inject their own. Default Date.now. */
  now?: () => number;
}

/** How often a running migration's progress is read (and the VM looked at). */
export const MIGRATION_LOOK_MS = 2_000;
/** A migration that has not finished by then is aborted (and counts as a failed attempt). */
export const MIGRATION_TIMEOUT_MS = 10 * 60_000;
