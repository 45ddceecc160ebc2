// Step: which VMs a snapshot captures, and whether each can be captured now. Every refusal names
// the VM (and host or disk) and says what to do; the first found is reported.
import type { Fleet, FleetHost } from '../../hosts/fleet.js';
import type { Hypervisor } from '../../hypervisors/hypervisor.js';
import type { Informer } from '../../runtime/informer.js';
import { findCondition } from '../../runtime/conditions.js';
import { matchesSelector } from '../../scheduler/label-selector.js';
import { VM_CONDITIONS } from '../reasons.js';
import type { VmObject } from '../resources.js';
import { rawDisks } from './raw-disks.js';
import { SNAPSHOT_REASONS as R, type SnapshotObject } from './types.js';

export interface Member {
  vm: VmObject;
  host: FleetHost;
  hypervisor: Hypervisor;
}

export interface Refusal {
  reason: string;
  message: string;
}

export type Members = { ok: true; members: Member[] } | { ok: false; refusal: Refusal };

const AGAIN = 'then create the snapshot again';

/** The VMs spec.source names, in name order; or why there are none. */
export function selectVms(snapshot: SnapshotObject, vms: Informer<VmObject>): VmObject[] | Refusal {
  const namespace = snapshot.metadata.namespace ?? '';
  const source = snapshot.spec.source;
  if (source.vmName !== undefined) {
    const vm = vms.get(`${namespace}/${source.vmName}`);
    if (vm) return [vm];
    return {
      reason: R.VmNotFound,
      message: `VirtualMachine ${source.vmName} does not exist in namespace ${namespace}: set spec.source.vmName to an existing VM, ${AGAIN}`,
    };
  }
  const matched = vms
    .list()
    .filter((vm) => vm.metadata.namespace === namespace && matchesSelector(vm.metadata.labels, source.selector))
    .sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  if (matched.length > 0) return matched;
  return {
    reason: R.SelectorMatchesNothing,
    message:
      `spec.source.selector ${JSON.stringify(source.selector ?? {})} matches no VirtualMachine in namespace ${namespace}: ` +
      `fix the selector or label the VMs (kubectl label vm NAME KEY=VALUE), ${AGAIN}`,
  };
}

/** Why the VM cannot be captured as its status and its host stand, or its host when it can. */
export function vmRefusal(vm: VmObject, fleet: Fleet): Refusal | FleetHost {
  const name = vm.metadata.name ?? '';
  const status = vm.status ?? {};
  if (vm.metadata.deletionTimestamp)
    return { reason: R.VmDeleting, message: `VirtualMachine ${name} is being deleted: nothing to capture` };
  const migrating = findCondition(status.conditions, VM_CONDITIONS.Migrating);
  if (status.migration || migrating?.status === 'True') {
    const where = status.migration ? ` from ${status.migration.source} to ${status.migration.target}` : '';
    return {
      reason: R.VmMigrating,
      message: `VirtualMachine ${name} is live-migrating${where}: wait until its migration ends, ${AGAIN}`,
    };
  }
  if (status.phase === 'Suspended')
    return {
      reason: R.VmSuspended,
      message: `VirtualMachine ${name} is suspended (its memory is in a saved image): resume it (virtfleet vm resume ${name}), ${AGAIN}`,
    };
  const pool = vm.spec.hostPoolRef.name;
  if (!status.host)
    return {
      reason: R.VmNotPlaced,
      message: `VirtualMachine ${name} has no host yet (phase ${status.phase ?? 'none'}): wait until it is placed, ${AGAIN}`,
    };
  const host = fleet.host(pool, status.host);
  if (!host?.verdict.readiness.ready) {
    const why = host
      ? `${host.verdict.readiness.reason ?? 'NotReady'}: ${host.verdict.readiness.message ?? ''}`
      : 'not connected';
    return {
      reason: R.HostNotReady,
      message: `VirtualMachine ${name} is on host ${status.host} of HostPool ${pool}, which is not ready (${why}): bring the host back, ${AGAIN}`,
    };
  }
  return host;
}

/** Every VM the snapshot captures, checked: placed, on a ready host, not migrating, qcow2 disks only. */
export async function resolveMembers(
  snapshot: SnapshotObject,
  vms: Informer<VmObject>,
  fleet: Fleet,
): Promise<Members> {
  const selected = selectVms(snapshot, vms);
  if (!Array.isArray(selected)) return { ok: false, refusal: selected };
  const members: Member[] = [];
  for (const vm of selected) {
    const host = vmRefusal(vm, fleet);
    if ('reason' in host) return { ok: false, refusal: host };
    members.push({ vm, host, hypervisor: fleet.hypervisor(host.uri) });
  }
  // The disks as the hosts have them, read in parallel.
  const refusals = await Promise.all(members.map((member) => diskRefusal(member)));
  const refusal = refusals.find((r) => r !== undefined);
  return refusal ? { ok: false, refusal } : { ok: true, members };
}

async function diskRefusal({ vm, host, hypervisor }: Member): Promise<Refusal | undefined> {
  const name = vm.metadata.name ?? '';
  const uid = vm.metadata.uid ?? '';
  let xml: string;
  try {
    xml = await hypervisor.xml(uid, { inactive: true });
  } catch (error) {
    return {
      reason: R.HostNotReady,
      message: `the definition of VirtualMachine ${name} could not be read from host ${host.name}: ${(error as Error).message}; ${AGAIN} once the host answers`,
    };
  }
  const raw = rawDisks(xml, vm);
  if (raw.length === 0) return undefined;
  const first = raw[0]!;
  return {
    reason: R.RawDisk,
    message:
      `disk ${first.disk} of VirtualMachine ${name} is raw (${first.file}): snapshots are kept inside qcow2 disks; ` +
      `give the VM a qcow2 disk (blank and clone disks are qcow2; convert an image with qemu-img convert -O qcow2), ${AGAIN}` +
      (raw.length > 1
        ? ` (also raw: ${raw
            .slice(1)
            .map((d) => d.disk)
            .join(', ')})`
        : ''),
  };
}
