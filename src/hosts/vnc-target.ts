// Where `virtfleet api` connects for a VM's VNC session: from the VM's status.graphics (recorded
// by the VM controller from the running domain's live XML) and its HostPool. Pure: the caller
// reads both objects; nothing here touches the network or a host.
import type { HostPool } from '../api/hostpool.js';
import type { VirtualMachine } from '../api/virtualmachine.js';

export type VncTarget = {
  /** spec.hosts[].name of the host the VM runs on. */
  host: string;
  /** The host's libvirt URI (HostPool spec.hosts[].uri). */
  uri: string;
} & (
  | /** RFB over TCP at this address and port (HostPool graphics.listen.network). */ { address: string; port: number }
  | /** RFB on this UNIX socket on the host (graphics.listen.socket): reachable only on that machine. */ {
      socket: string;
    }
);

/** Why there is no VNC session to be had, for an HTTP answer that says what to do. */
export interface VncUnavailable {
  /** NoGraphics (→ 400), NotRunning (→ 409), NotKnownYet and HostNotInPool (→ 503, retry). */
  reason: 'NoGraphics' | 'NotRunning' | 'NotKnownYet' | 'HostNotInPool';
  message: string;
}

/** Phases in which the domain is up and its VNC server answers (a paused guest shows its last frame). */
const SERVING_PHASES = new Set(['Running', 'Paused']);

export function vncTarget(
  vm: Pick<VirtualMachine, 'metadata' | 'spec' | 'status'>,
  pool: Pick<HostPool, 'metadata' | 'spec'> | undefined,
): { target: VncTarget } | { unavailable: VncUnavailable } {
  const name = vm.metadata.name ?? '';
  const status = vm.status ?? {};
  if (!vm.spec.graphics) {
    return unavailable(
      'NoGraphics',
      `VirtualMachine ${name} has no graphical console: add spec.graphics (type: vnc), then restart it (virtfleet vm restart ${name})`,
    );
  }
  if (!status.phase || !SERVING_PHASES.has(status.phase)) {
    return unavailable('NotRunning', `VirtualMachine ${name} is ${status.phase ?? 'not started yet'}, not Running`);
  }
  const graphics = status.graphics;
  if (!graphics || status.host === undefined || graphics.host !== status.host) {
    return unavailable(
      'NotKnownYet',
      `where the VNC server of ${name} listens on host ${status.host ?? '(none)'} is not recorded yet; ` +
        'try again in a moment (spec.graphics added to a running VM waits for a restart: see its RestartRequired condition)',
    );
  }
  const host = pool?.spec.hosts.find((h) => h.name === graphics.host);
  if (!pool || !host) {
    return unavailable(
      'HostNotInPool',
      `host ${graphics.host} of ${name} is not in HostPool ${vm.spec.hostPoolRef.name} (any more); try again once the VM is placed again`,
    );
  }
  if (graphics.socket !== undefined) return { target: { host: host.name, uri: host.uri, socket: graphics.socket } };
  if (graphics.address !== undefined && graphics.port !== undefined) {
    return { target: { host: host.name, uri: host.uri, address: graphics.address, port: graphics.port } };
  }
  return unavailable('NotKnownYet', `status.graphics of ${name} names neither an address and port nor a socket`);
}

function unavailable(reason: VncUnavailable['reason'], message: string): { unavailable: VncUnavailable } {
  return { unavailable: { reason, message } };
}
