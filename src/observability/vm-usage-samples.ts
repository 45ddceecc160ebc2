// The per-VM usage metrics: their names (KubeVirt's kubevirt_vmi_* under a virtfleet_ prefix,
// so dashboards and queries port by a rename) and the pure mapping from the hosts' bulk domain
// statistics to samples. Labels are namespace, name and host only: disks and interfaces are
// summed per VM (KubeVirt has a series per drive and interface; `sum by (namespace, name)` of
// its series is what these give).
import type { DomainUsage } from '../hypervisors/hypervisor.js';

export interface UsageMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** The figure of one domain; undefined when its host did not report it (no series then). */
  value: (domain: DomainUsage) => number | undefined;
}

/** The VM a domain belongs to (the domain's UUID is the VM's UID). */
export interface VmRef {
  namespace: string;
  name: string;
}

/** One host's bulk statistics: its name in its HostPool, and its domains. */
export interface HostReading {
  host: string;
  domains: DomainUsage[];
}

export interface UsageSample {
  labels: { namespace: string; name: string; host: string };
  value: number;
}

/** The sum of a field over devices; undefined when no device reports it. */
function sum<T>(devices: readonly T[], field: (device: T) => number | undefined): number | undefined {
  let total: number | undefined;
  for (const device of devices) {
    const value = field(device);
    if (value !== undefined) total = (total ?? 0) + value;
  }
  return total;
}

const guestReported = ' Reported by the guest (virtio balloon driver with a stats period); absent otherwise.';

export const USAGE_METRICS: readonly UsageMetric[] = [
  {
    name: 'virtfleet_vmi_running',
    help: "1 while the VM's domain on this host runs, 0 while it is there but paused, shut off or crashed (a series per host that holds a domain of the VM).",
    type: 'gauge',
    value: (d) => (d.state === 'running' ? 1 : 0),
  },
  {
    name: 'virtfleet_vmi_cpu_usage_seconds_total',
    help: 'Total CPU time spent in all modes (sum of both vcpu and hypervisor usage).',
    type: 'counter',
    value: (d) => d.cpuSeconds,
  },
  {
    name: 'virtfleet_vmi_memory_available_bytes',
    help: `Amount of usable memory as seen by the domain (its MemTotal).${guestReported}`,
    type: 'gauge',
    value: (d) => d.memory.availableBytes,
  },
  {
    name: 'virtfleet_vmi_memory_usable_bytes',
    help: `The amount of memory which can be reclaimed by balloon without pushing the guest system to swap, corresponds to 'Available' in /proc/meminfo.${guestReported}`,
    type: 'gauge',
    value: (d) => d.memory.usableBytes,
  },
  {
    name: 'virtfleet_vmi_memory_used_bytes',
    help: `Amount of used memory as seen by the domain: available minus usable.${guestReported}`,
    type: 'gauge',
    value: (d) => d.memory.usedBytes,
  },
  {
    name: 'virtfleet_vmi_memory_unused_bytes',
    help: `The amount of memory left completely unused by the system (MemFree).${guestReported}`,
    type: 'gauge',
    value: (d) => d.memory.unusedBytes,
  },
  {
    name: 'virtfleet_vmi_memory_actual_balloon_bytes',
    help: 'Current balloon size in bytes: the memory the domain has now.',
    type: 'gauge',
    value: (d) => d.memory.currentBytes,
  },
  {
    name: 'virtfleet_vmi_memory_domain_bytes',
    help: 'The amount of memory in bytes allocated to the domain (the memory value in the domain XML).',
    type: 'gauge',
    value: (d) => d.memory.maximumBytes,
  },
  {
    name: 'virtfleet_vmi_memory_resident_bytes',
    help: 'Resident set size of the process running the domain, on its host.',
    type: 'gauge',
    value: (d) => d.memory.residentBytes,
  },
  {
    name: 'virtfleet_vmi_storage_read_traffic_bytes_total',
    help: 'Total number of bytes read from storage (all disks of the VM).',
    type: 'counter',
    value: (d) => sum(d.disks, (disk) => disk.readBytes),
  },
  {
    name: 'virtfleet_vmi_storage_write_traffic_bytes_total',
    help: 'Total number of written bytes (all disks of the VM).',
    type: 'counter',
    value: (d) => sum(d.disks, (disk) => disk.writeBytes),
  },
  {
    name: 'virtfleet_vmi_storage_iops_read_total',
    help: 'Total number of I/O read operations (all disks of the VM).',
    type: 'counter',
    value: (d) => sum(d.disks, (disk) => disk.readOps),
  },
  {
    name: 'virtfleet_vmi_storage_iops_write_total',
    help: 'Total number of I/O write operations (all disks of the VM).',
    type: 'counter',
    value: (d) => sum(d.disks, (disk) => disk.writeOps),
  },
  {
    name: 'virtfleet_vmi_network_receive_bytes_total',
    help: 'Total network traffic received in bytes (all interfaces of the VM).',
    type: 'counter',
    value: (d) => sum(d.interfaces, (nic) => nic.rxBytes),
  },
  {
    name: 'virtfleet_vmi_network_transmit_bytes_total',
    help: 'Total network traffic transmitted in bytes (all interfaces of the VM).',
    type: 'counter',
    value: (d) => sum(d.interfaces, (nic) => nic.txBytes),
  },
  {
    name: 'virtfleet_vmi_network_receive_packets_total',
    help: 'Total network traffic received packets (all interfaces of the VM).',
    type: 'counter',
    value: (d) => sum(d.interfaces, (nic) => nic.rxPackets),
  },
  {
    name: 'virtfleet_vmi_network_transmit_packets_total',
    help: 'Total network traffic transmitted packets (all interfaces of the VM).',
    type: 'counter',
    value: (d) => sum(d.interfaces, (nic) => nic.txPackets),
  },
];

/**
 * The samples of every metric (by name) from the hosts' readings. Domains that are no VM's
 * (their UUID is no VM's UID) are skipped; a VM seen twice on one host name counts once.
 */
export function usageSamples(
  readings: readonly HostReading[],
  vms: ReadonlyMap<string, VmRef>,
): Map<string, UsageSample[]> {
  const out = new Map<string, UsageSample[]>(USAGE_METRICS.map((metric) => [metric.name, []]));
  const seen = new Set<string>();
  for (const { host, domains } of readings) {
    for (const domain of domains) {
      const vm = vms.get(domain.uuid);
      if (!vm) continue;
      const key = `${vm.namespace}/${vm.name}@${host}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const labels = { namespace: vm.namespace, name: vm.name, host };
      for (const metric of USAGE_METRICS) {
        const value = metric.value(domain);
        if (value !== undefined) out.get(metric.name)!.push({ labels, value });
      }
    }
  }
  return out;
}
