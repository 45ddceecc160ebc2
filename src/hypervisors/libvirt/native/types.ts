// What the binding returns and emits. Names come from libvirt's enums
// (names.ts, generated); a value this build does not know arrives as
// 'unknown', with the number in the matching *Code field.
import type {
  AgentReason,
  AgentState,
  BlockedReason,
  CloseReason,
  CrashedDetail,
  CrashedReason,
  DefinedDetail,
  DomainState,
  IOErrorAction,
  IPAddrType,
  JobOperation,
  JobType,
  NostateReason,
  PausedReason,
  PMSuspendedDetail,
  PMSuspendedReason,
  ResumedDetail,
  RunningReason,
  ShutdownDetail,
  ShutdownReason,
  ShutoffReason,
  StartedDetail,
  StoragePoolState,
  StorageVolType,
  StoppedDetail,
  SuspendedDetail,
  UndefinedDetail,
  WatchdogAction,
} from './names.js';

export type * from './names.js';

/** A name from libvirt's enum, or 'unknown' for a value newer than this build. */
export type Named<T extends string> = T | 'unknown';

/** How the binding names a domain. Calls take the UUID back. */
export interface DomainIdentity {
  uuid: string;
  name: string;
  /** The running domain's id; null when it is not running. */
  id: number | null;
}

interface ReasonByState {
  nostate: NostateReason;
  running: RunningReason;
  blocked: BlockedReason;
  paused: PausedReason;
  shutdown: ShutdownReason;
  shutoff: ShutoffReason;
  crashed: CrashedReason;
  pmsuspended: PMSuspendedReason;
}

/** virDomainGetState: the state, and why the domain is in it. */
export type DomainStateInfo =
  | {
      [S in keyof ReasonByState]: {
        state: S;
        reason: Named<ReasonByState[S]>;
        stateCode: number;
        reasonCode: number;
      };
    }[keyof ReasonByState]
  | { state: 'unknown'; reason: 'unknown'; stateCode: number; reasonCode: number };

export type DomainSummary = DomainIdentity & DomainStateInfo;

export interface DomainInfo {
  state: Named<DomainState>;
  stateCode: number;
  maxMemoryKiB: number;
  memoryKiB: number;
  vcpus: number;
  /** CPU time used, in nanoseconds (exact up to 2^53 ns) */
  cpuTimeNs: number;
}

/**
 * domainSetMemoryFlags: which memory to set. Neither `live` nor `config`: the
 * domain as it is now (running: live, else its definition).
 */
export interface SetMemoryOptions {
  /** The running domain (the balloon target, or with `maximum` its live maximum where the driver allows). */
  live?: boolean;
  /** The persistent definition, used at the next start. */
  config?: boolean;
  /** Set the maximum memory instead of the current one. */
  maximum?: boolean;
}

export interface NodeInfo {
  model: string;
  memoryKiB: number;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface Version {
  major: number;
  minor: number;
  micro: number;
}

interface DetailByEvent {
  defined: DefinedDetail;
  undefined: UndefinedDetail;
  started: StartedDetail;
  suspended: SuspendedDetail;
  resumed: ResumedDetail;
  stopped: StoppedDetail;
  shutdown: ShutdownDetail;
  pmsuspended: PMSuspendedDetail;
  crashed: CrashedDetail;
}

/** VIR_DOMAIN_EVENT_ID_LIFECYCLE, e.g. { event: 'stopped', detail: 'crashed' }. */
export type LifecycleEvent =
  | {
      [E in keyof DetailByEvent]: {
        type: 'lifecycle';
        domain: DomainIdentity;
        event: E;
        detail: Named<DetailByEvent[E]>;
        eventCode: number;
        detailCode: number;
      };
    }[keyof DetailByEvent]
  | {
      type: 'lifecycle';
      domain: DomainIdentity;
      event: 'unknown';
      detail: 'unknown';
      eventCode: number;
      detailCode: number;
    };

export interface RebootEvent {
  type: 'reboot';
  domain: DomainIdentity;
}

export interface WatchdogEvent {
  type: 'watchdog';
  domain: DomainIdentity;
  action: Named<WatchdogAction>;
  actionCode: number;
}

export interface IOErrorEvent {
  type: 'ioError';
  domain: DomainIdentity;
  srcPath: string;
  devAlias: string;
  action: Named<IOErrorAction>;
  actionCode: number;
  /** e.g. 'enospc' */
  reason: string;
}

export interface AgentLifecycleEvent {
  type: 'agentLifecycle';
  domain: DomainIdentity;
  state: Named<AgentState>;
  reason: Named<AgentReason>;
  stateCode: number;
  reasonCode: number;
}

export type DomainEvent = LifecycleEvent | RebootEvent | WatchdogEvent | IOErrorEvent | AgentLifecycleEvent;

/**
 * The connection closed. 'client' is reported by the binding when close()
 * completes; the others come from libvirt (a remote host went away).
 */
export interface CloseEvent {
  type: 'close';
  reason: Named<CloseReason>;
  reasonCode: number;
}

export interface OpenOptions {
  readOnly?: boolean;
  /** Answers libvirt's credential requests; nothing is ever asked on a terminal. */
  auth?: { username?: string; password?: string };
}

export interface CreateOptions {
  paused?: boolean;
  autodestroy?: boolean;
  bypassCache?: boolean;
  /** Boot afresh, discarding a managed-save image. */
  forceBoot?: boolean;
}

export interface DestroyOptions {
  /** SIGTERM only, without the SIGKILL that follows by default. */
  graceful?: boolean;
}

export interface UndefineOptions {
  managedSave?: boolean;
  snapshotsMetadata?: boolean;
  checkpointsMetadata?: boolean;
  nvram?: boolean;
  keepNvram?: boolean;
}

export interface XMLDescOptions {
  secure?: boolean;
  inactive?: boolean;
  migratable?: boolean;
}

/**
 * domainMigrate. Peer-to-peer (the source's libvirtd talks to the
 * destination's) is what the QEMU driver supports from a remote client.
 */
export interface MigrateOptions {
  /** The destination's libvirt URI, e.g. qemu+tcp://10.0.0.3/system; needs peerToPeer. */
  destinationUri?: string;
  /** Where QEMU sends memory (tcp://ADDRESS[:PORT]); by default libvirt asks the destination. */
  migrationUri?: string;
  live?: boolean;
  peerToPeer?: boolean;
  tunnelled?: boolean;
  /** Define the domain persistently on the destination. */
  persistDestination?: boolean;
  /** Remove the source's definition once migrated. */
  undefineSource?: boolean;
  /** Copy non-shared disks: all of them, or only what differs from a shared backing image. */
  copyStorage?: 'all' | 'incremental';
  /** VIR_MIGRATE_UNSAFE: migrate disks libvirt cannot tell are safe (not on a shared file system it knows, cache not none). */
  unsafe?: boolean;
  /** Bandwidth limit, MiB/s. */
  bandwidthMiBps?: number;
  /** Longest pause allowed at switch-over, ms (set before the migration starts). */
  maxDowntimeMs?: number;
  autoConverge?: boolean;
  abortOnError?: boolean;
  destinationName?: string;
  destinationXml?: string;
  persistXml?: string;
}

/** libvirt's typed parameters, by field name ("time_elapsed", "cpu.time", "block.0.rd.bytes"…). */
export type TypedParams = Record<string, number | boolean | string>;

/** virDomainGetJobStats */
export interface JobStats {
  type: Named<JobType>;
  typeCode: number;
  /** What the job does, when libvirt says (migration_out, save…). */
  operation?: Named<JobOperation>;
  operationCode?: number;
  stats: TypedParams;
}

export type StatsGroup =
  'state' | 'cpuTotal' | 'balloon' | 'vcpu' | 'interface' | 'block' | 'perf' | 'iothread' | 'memory' | 'dirtyrate';

export interface AllDomainStatsOptions {
  /** Which groups; all that the driver has when omitted. */
  groups?: StatsGroup[];
  active?: boolean;
  inactive?: boolean;
  persistent?: boolean;
  transient?: boolean;
  running?: boolean;
  paused?: boolean;
  shutoff?: boolean;
  other?: boolean;
  /** Fail rather than skip groups the driver lacks. */
  enforce?: boolean;
  /** Skip domains busy with a job instead of waiting for them. */
  nowait?: boolean;
}

export interface DomainStatsRecord {
  domain: DomainIdentity;
  stats: TypedParams;
}

export interface InterfaceAddresses {
  name: string;
  hwaddr: string;
  addresses: { type: Named<IPAddrType>; address: string; prefix: number }[];
}

/** A storage pool, named by its name (unique on its host). */
export interface StoragePoolIdentity {
  name: string;
  uuid: string;
}

export interface StoragePoolSummary extends StoragePoolIdentity {
  active: boolean;
  persistent: boolean;
  autostart: boolean;
}

/** virStoragePoolGetInfo; sizes in bytes (exact up to 2^53). */
export interface StoragePoolInfo {
  state: Named<StoragePoolState>;
  stateCode: number;
  capacity: number;
  allocation: number;
  available: number;
}

/** A volume. Calls name it by its key (for a directory pool, its path). */
export interface StorageVolIdentity {
  name: string;
  key: string;
  path: string;
}

/** virStorageVolGetInfo; sizes in bytes (exact up to 2^53). */
export interface StorageVolInfo {
  type: Named<StorageVolType>;
  typeCode: number;
  capacity: number;
  allocation: number;
}

export interface StoragePoolBuildOptions {
  overwrite?: boolean;
  noOverwrite?: boolean;
}

export interface StoragePoolCreateOptions extends StoragePoolBuildOptions {
  /** Build the pool (e.g. make its directory) before starting it. */
  build?: boolean;
}

export interface StorageVolCreateOptions {
  preallocateMetadata?: boolean;
  reflink?: boolean;
  validate?: boolean;
}

export interface StorageVolResizeOptions {
  allocate?: boolean;
  delta?: boolean;
  shrink?: boolean;
}

/** Where in the volume a transfer starts, and how many bytes it moves (0 or absent: to the end). */
export interface StorageTransferRange {
  offset?: number;
  length?: number;
}

/** A virtual network, named by its name. */
export interface NetworkIdentity {
  name: string;
  uuid: string;
}

export interface NetworkSummary extends NetworkIdentity {
  active: boolean;
  persistent: boolean;
  autostart: boolean;
}

/** virNetworkGetDHCPLeases */
export interface DHCPLease {
  iface: string;
  /** seconds since the epoch */
  expiryTime: number;
  type: Named<IPAddrType>;
  mac: string;
  iaid: string | null;
  address: string;
  prefix: number;
  hostname: string | null;
  clientId: string | null;
}

export interface SnapshotCreateOptions {
  redefine?: boolean;
  current?: boolean;
  noMetadata?: boolean;
  halt?: boolean;
  diskOnly?: boolean;
  reuseExternal?: boolean;
  quiesce?: boolean;
  atomic?: boolean;
  live?: boolean;
  validate?: boolean;
}

export interface SnapshotListOptions {
  /** Only snapshots without a parent. */
  roots?: boolean;
  /** Parents before their children. */
  topological?: boolean;
}

export interface SnapshotRevertOptions {
  running?: boolean;
  paused?: boolean;
  force?: boolean;
  resetNvram?: boolean;
}

export interface SnapshotDeleteOptions {
  children?: boolean;
  childrenOnly?: boolean;
  metadataOnly?: boolean;
}

export interface ConsoleOptions {
  /** The console device's alias (e.g. 'serial0'); the first console when omitted. */
  devName?: string;
  /** Take the console over from another client that holds it. */
  force?: boolean;
  /** Refuse unless the driver can make the console exclusive. */
  safe?: boolean;
}
