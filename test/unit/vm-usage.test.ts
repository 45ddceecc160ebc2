// Per-VM usage metrics, the pure part: libvirt's bulk domain statistics (the flat fields
// virConnectGetAllDomainStats gives, as QEMU and the test driver report them) into typed figures
// (domainUsageOf), and those into samples labelled namespace, name and host (usageSamples).
import { describe, expect, it } from '@jest/globals';
import { domainUsageOf } from '../../src/hypervisors/libvirt/domain-stats.js';
import type { DomainStatsRecord } from '../../src/hypervisors/libvirt/native/index.js';
import { USAGE_METRICS, usageSamples, type VmRef } from '../../src/observability/vm-usage-samples.js';

const WEB = '0b8e3f52-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const DB = '7f6e5d4c-3b2a-4190-8877-665544332211';
const STRANGER = '11111111-2222-4333-8444-555555555555';

/** What QEMU reports for a running guest with two disks, one NIC and a balloon with a stats period. */
function qemuRecord(uuid: string, name: string): DomainStatsRecord {
  return {
    domain: { uuid, name, id: 7 },
    stats: {
      'state.state': 1,
      'state.reason': 1,
      'cpu.time': 12_500_000_000,
      'cpu.user': 9_000_000_000,
      'cpu.system': 2_000_000_000,
      'balloon.current': 131072,
      'balloon.maximum': 262144,
      'balloon.available': 120000,
      'balloon.usable': 80000,
      'balloon.unused': 60000,
      'balloon.rss': 150000,
      'balloon.last-update': 1765100000,
      'net.count': 1,
      'net.0.name': 'vnet3',
      'net.0.rx.bytes': 4096,
      'net.0.rx.pkts': 40,
      'net.0.rx.errs': 0,
      'net.0.rx.drop': 0,
      'net.0.tx.bytes': 2048,
      'net.0.tx.pkts': 20,
      'block.count': 2,
      'block.0.name': 'vda',
      'block.0.path': '/var/lib/virtfleet/web-root.qcow2',
      'block.0.rd.reqs': 100,
      'block.0.rd.bytes': 409600,
      'block.0.wr.reqs': 10,
      'block.0.wr.bytes': 40960,
      'block.1.name': 'vdb',
      'block.1.rd.reqs': 5,
      'block.1.rd.bytes': 20480,
      'block.1.wr.reqs': 1,
      'block.1.wr.bytes': 4096,
    },
  };
}

/** What libvirt's test driver reports: the state only, whatever groups are asked for. */
function testDriverRecord(uuid: string, name: string, state = 1): DomainStatsRecord {
  return { domain: { uuid, name, id: state === 1 ? 1 : null }, stats: { 'state.state': state, 'state.reason': 1 } };
}

const VMS = new Map<string, VmRef>([
  [WEB, { namespace: 'shop', name: 'web' }],
  [DB, { namespace: 'shop', name: 'db' }],
]);

function values(samples: Map<string, { labels: Record<string, string>; value: number }[]>, metric: string) {
  return samples.get(metric)!.map(({ labels, value }) => ({ ...labels, value }));
}

describe('domainUsageOf', () => {
  it('turns QEMU figures into seconds and bytes, per disk and interface', () => {
    expect(domainUsageOf(qemuRecord(WEB, 'vf-web'))).toEqual({
      uuid: WEB,
      name: 'vf-web',
      state: 'running',
      cpuSeconds: 12.5,
      memory: {
        currentBytes: 131072 * 1024,
        maximumBytes: 262144 * 1024,
        availableBytes: 120000 * 1024,
        usableBytes: 80000 * 1024,
        unusedBytes: 60000 * 1024,
        usedBytes: 40000 * 1024,
        residentBytes: 150000 * 1024,
      },
      disks: [
        { name: 'vda', readBytes: 409600, writeBytes: 40960, readOps: 100, writeOps: 10 },
        { name: 'vdb', readBytes: 20480, writeBytes: 4096, readOps: 5, writeOps: 1 },
      ],
      interfaces: [{ name: 'vnet3', rxBytes: 4096, rxPackets: 40, txBytes: 2048, txPackets: 20 }],
    });
  });

  it('leaves out what the driver does not report, instead of reading it as 0', () => {
    expect(domainUsageOf(testDriverRecord(WEB, 'vf-web', 5))).toEqual({
      uuid: WEB,
      name: 'vf-web',
      state: 'shutoff',
      memory: {},
      disks: [],
      interfaces: [],
    });
  });

  it('has no used memory without both of the guest-reported figures it is computed from', () => {
    const record = qemuRecord(WEB, 'vf-web');
    delete record.stats['balloon.usable'];
    const usage = domainUsageOf(record);
    expect(usage.memory.availableBytes).toBe(120000 * 1024);
    expect(usage.memory.usedBytes).toBeUndefined();
  });

  it('reads a state newer than this build as unknown', () => {
    expect(domainUsageOf(testDriverRecord(WEB, 'vf-web', 42)).state).toBe('unknown');
  });
});

describe('usageSamples', () => {
  it('labels each VM by namespace, name and host, and sums its disks and interfaces', () => {
    const samples = usageSamples([{ host: 'node-a', domains: [domainUsageOf(qemuRecord(WEB, 'vf-web'))] }], VMS);
    const web = { namespace: 'shop', name: 'web', host: 'node-a' };
    expect(values(samples, 'virtfleet_vmi_cpu_usage_seconds_total')).toEqual([{ ...web, value: 12.5 }]);
    expect(values(samples, 'virtfleet_vmi_memory_used_bytes')).toEqual([{ ...web, value: 40000 * 1024 }]);
    expect(values(samples, 'virtfleet_vmi_memory_available_bytes')).toEqual([{ ...web, value: 120000 * 1024 }]);
    expect(values(samples, 'virtfleet_vmi_storage_read_traffic_bytes_total')).toEqual([
      { ...web, value: 409600 + 20480 },
    ]);
    expect(values(samples, 'virtfleet_vmi_storage_write_traffic_bytes_total')).toEqual([
      { ...web, value: 40960 + 4096 },
    ]);
    expect(values(samples, 'virtfleet_vmi_storage_iops_read_total')).toEqual([{ ...web, value: 105 }]);
    expect(values(samples, 'virtfleet_vmi_storage_iops_write_total')).toEqual([{ ...web, value: 11 }]);
    expect(values(samples, 'virtfleet_vmi_network_receive_bytes_total')).toEqual([{ ...web, value: 4096 }]);
    expect(values(samples, 'virtfleet_vmi_network_transmit_bytes_total')).toEqual([{ ...web, value: 2048 }]);
    expect(values(samples, 'virtfleet_vmi_network_receive_packets_total')).toEqual([{ ...web, value: 40 }]);
    expect(values(samples, 'virtfleet_vmi_network_transmit_packets_total')).toEqual([{ ...web, value: 20 }]);
    expect(values(samples, 'virtfleet_vmi_running')).toEqual([{ ...web, value: 1 }]);
    // Every metric has its one series, and no label but the three.
    for (const metric of USAGE_METRICS) {
      expect(samples.get(metric.name)).toHaveLength(1);
      expect(Object.keys(samples.get(metric.name)![0]!.labels).sort()).toEqual(['host', 'name', 'namespace']);
    }
  });

  it('skips domains that are no VM, and gives a test-driver host only what it reports', () => {
    const samples = usageSamples(
      [
        {
          host: 'sim-1',
          domains: [testDriverRecord(DB, 'vf-db'), testDriverRecord(STRANGER, 'someone-elses')].map(domainUsageOf),
        },
      ],
      VMS,
    );
    expect(values(samples, 'virtfleet_vmi_running')).toEqual([
      { namespace: 'shop', name: 'db', host: 'sim-1', value: 1 },
    ]);
    for (const metric of USAGE_METRICS.filter((m) => m.name !== 'virtfleet_vmi_running'))
      expect(samples.get(metric.name)).toEqual([]);
  });

  it('gives a VM with domains on two hosts (a migration under way) a series per host', () => {
    const source = domainUsageOf(qemuRecord(WEB, 'vf-web'));
    const destination = domainUsageOf({ ...testDriverRecord(WEB, 'vf-web', 3) });
    const samples = usageSamples(
      [
        { host: 'node-a', domains: [source] },
        { host: 'node-b', domains: [destination] },
      ],
      VMS,
    );
    expect(values(samples, 'virtfleet_vmi_running')).toEqual([
      { namespace: 'shop', name: 'web', host: 'node-a', value: 1 },
      { namespace: 'shop', name: 'web', host: 'node-b', value: 0 },
    ]);
  });

  it('gives no series without readings: a VM that is gone has none', () => {
    const samples = usageSamples([], VMS);
    for (const metric of USAGE_METRICS) expect(samples.get(metric.name)).toEqual([]);
  });
});

describe('the metric names', () => {
  it("are KubeVirt's kubevirt_vmi_* names under virtfleet_, counters ending in _total", () => {
    const kubevirt = [
      'cpu_usage_seconds_total',
      'memory_available_bytes',
      'memory_usable_bytes',
      'memory_used_bytes',
      'memory_unused_bytes',
      'memory_actual_balloon_bytes',
      'memory_domain_bytes',
      'memory_resident_bytes',
      'storage_read_traffic_bytes_total',
      'storage_write_traffic_bytes_total',
      'storage_iops_read_total',
      'storage_iops_write_total',
      'network_receive_bytes_total',
      'network_transmit_bytes_total',
      'network_receive_packets_total',
      'network_transmit_packets_total',
    ];
    const names = USAGE_METRICS.map((m) => m.name);
    for (const name of kubevirt) expect(names).toContain(`virtfleet_vmi_${name}`);
    for (const metric of USAGE_METRICS) {
      expect(metric.name).toMatch(/^virtfleet_vmi_[a-z_]+$/);
      expect(metric.name.endsWith('_total')).toBe(metric.type === 'counter');
    }
  });
});
