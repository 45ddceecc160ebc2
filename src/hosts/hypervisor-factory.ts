// What the Fleet is built from: a maker of Hypervisors (the contract of hypervisors/hypervisor.ts)
// and the connections behind them. The Fleet never names a driver; the process that starts the
// controllers picks one: today libvirt, by libvirtHypervisors() (src/cli/libvirt-hypervisors.ts),
// which src/cli/controller.ts and the tests use.
import type { HostCredentials, Hypervisor } from '../hypervisors/hypervisor.js';

/**
 * What a Hypervisor is for. 'control': every call of the controllers and the host's events.
 * 'heartbeat': the HostPool controller's pings, on a connection of their own where the driver
 * can open one, so that a heartbeat never waits behind a slow call (a busy, healthy host must
 * not miss beats).
 */
export type HypervisorRole = 'control' | 'heartbeat';

export interface HypervisorFactory {
  /** Host `uri`'s Hypervisor for `role`. The Fleet asks once per URI and role, and keeps it until release(). */
  hypervisor(uri: string, role: HypervisorRole): Hypervisor;
  /** Where each URI's credentials come from; asked at every (re)connect, so a rotated Secret applies at the next one. */
  useCredentials(provider: (uri: string) => HostCredentials | undefined): void;
  /** The Fleet let go of `uri` (the host left its pool): close what served it. */
  release(uri: string): Promise<void>;
  /** Closes every connection this factory opened (shutdown). */
  close(): Promise<void>;
}
