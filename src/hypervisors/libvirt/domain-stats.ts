// libvirt's bulk domain statistics (virConnectGetAllDomainStats) as DomainUsage: typed figures
// out of libvirt's flat typed parameters ("cpu.time", "balloon.rss", "block.0.rd.bytes"…).
// Translation only: a field the driver did not report stays undefined.
import type { DiskUsage, DomainMemoryUsage, DomainState, DomainUsage, InterfaceUsage } from '../hypervisor.js';
import type { DomainStatsRecord, StatsGroup, TypedParams } from './native/index.js';

/** The groups a usage reading needs; a driver that lacks some (the test driver has 'state' only) skips them. */
export const USAGE_STATS_GROUPS: StatsGroup[] = ['state', 'cpuTotal', 'balloon', 'interface', 'block'];

// virDomainState, by number (state.state is the bare enum value).
const STATES: DomainState[] = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
];

const KiB = 1024;

export function domainUsageOf(record: DomainStatsRecord): DomainUsage {
  const { stats } = record;
  const number = (field: string): number | undefined => {
    const value = stats[field];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  const state = number('state.state');
  const cpuNs = number('cpu.time');
  return {
    uuid: record.domain.uuid,
    name: record.domain.name,
    state: state === undefined ? 'unknown' : (STATES[state] ?? 'unknown'),
    ...(cpuNs === undefined ? {} : { cpuSeconds: cpuNs / 1e9 }),
    memory: memoryOf(number),
    disks: devices(stats, 'block', (n, name) =>
      defined<DiskUsage>({
        name,
        readBytes: n('rd.bytes'),
        writeBytes: n('wr.bytes'),
        readOps: n('rd.reqs'),
        writeOps: n('wr.reqs'),
      }),
    ),
    interfaces: devices(stats, 'net', (n, name) =>
      defined<InterfaceUsage>({
        name,
        rxBytes: n('rx.bytes'),
        rxPackets: n('rx.pkts'),
        txBytes: n('tx.bytes'),
        txPackets: n('tx.pkts'),
      }),
    ),
  };
}

function memoryOf(number: (field: string) => number | undefined): DomainMemoryUsage {
  const bytes = (field: string) => {
    const kib = number(`balloon.${field}`);
    return kib === undefined ? undefined : kib * KiB;
  };
  const availableBytes = bytes('available');
  const usableBytes = bytes('usable');
  return defined<DomainMemoryUsage>({
    currentBytes: bytes('current'),
    maximumBytes: bytes('maximum'),
    availableBytes,
    usableBytes,
    unusedBytes: bytes('unused'),
    usedBytes:
      availableBytes !== undefined && usableBytes !== undefined ? Math.max(0, availableBytes - usableBytes) : undefined,
    residentBytes: bytes('rss'),
  });
}

/** `<prefix>.count` devices, each `<prefix>.N.name` and its fields `<prefix>.N.<field>`. */
function devices<T>(
  stats: TypedParams,
  prefix: 'block' | 'net',
  make: (field: (name: string) => number | undefined, name: string) => T,
): T[] {
  const count = stats[`${prefix}.count`];
  if (typeof count !== 'number') return [];
  const out: T[] = [];
  for (let i = 0; i < count; i++) {
    const name = stats[`${prefix}.${i}.name`];
    const field = (f: string) => {
      const value = stats[`${prefix}.${i}.${f}`];
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    };
    out.push(make(field, typeof name === 'string' ? name : String(i)));
  }
  return out;
}

/** The object without its undefined fields: a figure not reported is absent. */
function defined<T extends object>(value: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
