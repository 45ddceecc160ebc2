// The shapes the install flow shares between its files: what the reconciler gets back (the
// plan), what it passes in (the context), and one install under way (the session).
import type { VirtualMachineSpec } from '../../api/virtualmachine.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import type { Logger } from '../../observability/logging.js';
import type { InstallServer } from '../../provisioning/install-server.js';
import type { HashMemo } from '../../provisioning/profile-secrets.js';
import type { PxeSettings } from '../../provisioning/pxe.js';
import type { EventType } from '../../runtime/events.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient } from '../../runtime/kube-client.js';
import type { ProfileObject } from '../installprofile.js';
import type { PoolObject, VmObject } from '../resources.js';
import type { ActionDecision } from '../vm-actions.js';
import type { VmStatusDraft } from '../vm-status.js';
import type { InstallMedia } from './media.js';
import type { PxeHosts } from './pxe.js';
import type { InstallSessions } from './sessions.js';

export type KernelBoot = NonNullable<VirtualMachineSpec['kernelBoot']>;

/** How the installer's domain differs from the VM's own: spec fields replaced, and the boot device. */
export interface InstallerDomain {
  spec: Partial<VirtualMachineSpec>;
  /** 'network': PXE. Otherwise the spec's kernelBoot boots. */
  bootDevice?: 'network';
}

/** What the reconciler does with the VM this time. */
export type InstallPlan =
  /** No install (none asked, done, or not to be started): the domain boots from disk, power as usual. */
  | { kind: 'none' }
  /** The install cannot start yet (the Installed condition says why): nothing is defined. */
  | { kind: 'wait'; requeueAfterMs?: number }
  /** Installing: define the installer's domain; power as usual (startNow: start it at once, whatever the runStrategy). */
  | { kind: 'install'; domain: InstallerDomain; startNow: boolean; requeueAfterMs: number }
  /** Just installed: define the disk boot and start it. */
  | { kind: 'installed'; startNow: boolean }
  /** The install failed: the domain boots from disk once asked; no power steps until a retry. */
  | { kind: 'failed' };

export interface InstallContext {
  vm: VmObject;
  pool: PoolObject;
  hypervisor: Hypervisor;
  draft: VmStatusDraft;
  /** This process asked the domain to shut down (runStrategy Halted, stop, restart) and has not seen it stopped yet. */
  shutdownAsked: boolean;
  recordAction: (record: NonNullable<ActionDecision['record']>) => void;
  event: (type: EventType, reason: string, message: string) => void;
}

export interface InstallFlowOptions {
  client: KubeClient;
  vms: Informer<VmObject>;
  /** Without an informer of InstallProfiles, VMs with spec.install wait (Installed=False, ProfileNotFound). */
  profiles?: Informer<ProfileObject>;
  /** Without an endpoint, VMs with spec.install wait (Installed=False, InstallEndpointUnavailable). */
  server?: InstallServer;
  logger: Logger;
  /** Overrides every profile's spec.timeoutMinutes (tests). */
  timeoutMs?: number;
  media?: InstallMedia;
  /** Records Events on VMs (for fetches of Kickstart files, outside reconciles). */
  event: (vm: VmObject, type: EventType, reason: string, message: string) => void;
  /** The install network and PXE pool on the hosts (src/provisioning/pxe.ts PXE_DEFAULTS). */
  pxe?: Partial<PxeSettings>;
  /** The clock (the VM controller's; tests may inject one). Default Date.now. */
  now?: () => number;
}

/** One install under way in this process. */
export interface Session {
  key: string;
  /** The installer's domain, as defined while the install runs. */
  domain: InstallerDomain;
  method: 'kernel' | 'pxe';
  /** PXE: the host with the VM's script, and the MAC that names it (deleted when the install ends). */
  pxe?: { hypervisor: Hypervisor; mac: string };
  startedAt: number;
  deadline: number;
  /** namespace/name of the profile, for messages. */
  profile: string;
  /** The Kickstart URL without its token. */
  shownUrl: string;
  /** The domain was seen stopped while a stop was asked: that stop did not end the install. */
  interrupted: boolean;
}

/** What the install flow's files share: its options, the sessions, the PXE hosts and the media. */
export interface InstallKit {
  options: InstallFlowOptions;
  sessions: InstallSessions;
  pxe: PxeHosts;
  media: InstallMedia;
  memo: HashMemo;
  now: () => number;
}

export const DEFAULT_TIMEOUT_MS = 60 * 60_000;

export function minutes(ms: number): string {
  const m = ms / 60_000;
  return m >= 1 ? `${Math.round(m)} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * How often an install under way is looked at besides its power-off event: a lifecycle event
 * lost across a controller restart or a reconnect must not leave it waiting until its deadline.
 */
export const INSTALL_LOOK_MS = 30_000;
