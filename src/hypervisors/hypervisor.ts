// What the controllers may ask of one hypervisor host. Plain data in, plain data out, Promises
// throughout; no libvirt handle, connection or enum number crosses this line. Domains are named
// by UUID (the VM object's UID), so a controller that restarts finds what it made.
//
// The libvirt implementation is libvirt/driver.ts; connections (and their reconnects) belong to
// libvirt/connection-pool.ts, so a Hypervisor is cheap and can be made per call.

/**
 * What a host's connection authenticates with (from the HostPool's credentialsSecretRef): the
 * key material of an +ssh or +tls URI, or a username and password (SASL, the test driver).
 */
export interface HostCredentials {
  username?: string;
  password?: string;
  ssh?: SshCredentials;
  tls?: TlsCredentials;
}

export interface SshCredentials {
  privateKey: string | Buffer;
  knownHosts: string | Buffer;
}

export interface TlsCredentials {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

/** The hypervisor a host runs, as the API names it; 'test' is libvirt's simulated driver. */
export type HostHypervisorType = 'kvm' | 'xen' | 'test';

export interface DefineOptions {
  /** Check the XML against the host's schema before defining (default true). */
  validate?: boolean;
}

export interface HostFacts {
  /** The URI the host was reached by (as configured, not as libvirt resolved it). */
  uri: string;
  hostname: string;
  type: HostHypervisorType;
  /** libvirt's driver name, e.g. 'QEMU', 'Xen', 'TEST'. */
  driver: string;
  /** The hypervisor's version, e.g. '7.2.0' (QEMU), '4.17.0' (Xen). */
  hypervisorVersion: string;
  /** libvirt's version on the host (the daemon's, for remote URIs), e.g. '9.0.0'. */
  libvirtVersion: string;
  cpu: {
    count: number;
    model: string;
    mhz: number;
    sockets: number;
    cores: number;
    threads: number;
    numaNodes: number;
  };
  memoryBytes: number;
  /** Free memory; undefined where the host cannot tell (a test:/// host without NUMA cells). */
  freeMemoryBytes: number | undefined;
  capabilities: CapabilitiesSummary;
}

/** The part of libvirt's capabilities XML a scheduler needs. */
export interface CapabilitiesSummary {
  /** The host CPU's architecture, e.g. 'x86_64'. */
  arch: string;
  /** Guest kinds the host can run: OS type ('hvm' full virtualization, 'xen' Xen PV) per arch, with domain types. */
  guests: { osType: string; arch: string; domainTypes: string[] }[];
  /** Hardware-accelerated KVM guests are possible (a guest offers domain type 'kvm'). */
  kvm: boolean;
  /** Xen PV guests are possible (os type 'xen'). */
  xenPv: boolean;
}

/** libvirt's domain states, without prefix; 'unknown' for one newer than this build. */
export type DomainState =
  'nostate' | 'running' | 'blocked' | 'paused' | 'shutdown' | 'shutoff' | 'crashed' | 'pmsuspended' | 'unknown';

export interface DomainStatus {
  uuid: string;
  name: string;
  /** The running domain's id; null when it is not running. */
  id: number | null;
  state: DomainState;
  /** Why it is in that state: libvirt's reason without prefix, e.g. 'booted', 'destroyed', 'crashed', 'user'. */
  reason: string;
}

export interface DomainRef {
  uuid: string;
  name: string;
}

export interface StartOptions {
  /** Start with the vCPUs paused. */
  paused?: boolean;
  /** Boot afresh, discarding a managed-save image. */
  forceBoot?: boolean;
}

export interface DestroyOptions {
  /** Only ask the process to exit (SIGTERM), without the SIGKILL that follows by default. */
  graceful?: boolean;
}

export interface UndefineOptions {
  /**
   * Keep the UEFI variable store (NVRAM) instead of deleting it. Default false: the definition,
   * its managed-save image, snapshot and checkpoint metadata and NVRAM all go, so nothing
   * refuses the undefine or lingers after it.
   */
  keepNvram?: boolean;
}

export interface XmlOptions {
  /** The definition used at next start, not the running one. */
  inactive?: boolean;
  /** Include secrets (passwords of graphics consoles…). */
  secure?: boolean;
}

/**
 * Where a domain's addresses come from: 'lease' the DHCP leases of the libvirt network its NICs
 * are on (none for bridged NICs), 'agent' the guest agent (every guest interface, loopback
 * included), 'arp' the host's ARP table.
 */
export type InterfaceAddressSource = 'lease' | 'agent' | 'arp';

export interface GuestAddress {
  type: 'ipv4' | 'ipv6';
  address: string;
  /** The prefix length, e.g. 24. */
  prefix: number;
}

export interface GuestInterface {
  /** The interface's name: the host's (e.g. 'vnet0') for 'lease' and 'arp', the guest's (e.g. 'eth0') for 'agent'. */
  name: string;
  /** The MAC address in lower case, as in the domain XML; '' when the source does not tell. */
  mac: string;
  addresses: GuestAddress[];
}

/** Lifecycle events, as libvirt names them. */
export type LifecycleEventName =
  | 'defined'
  | 'undefined'
  | 'started'
  | 'suspended'
  | 'resumed'
  | 'stopped'
  | 'shutdown'
  | 'pmsuspended'
  | 'crashed'
  | 'unknown';

/**
 * What a host reports. Controllers only turn these into work-queue keys; they never act on
 * them directly (DESIGN.md).
 */
export type HostEvent =
  | {
      type: 'lifecycle';
      domain: DomainRef;
      event: LifecycleEventName;
      /** libvirt's detail without prefix, e.g. stopped/'crashed', stopped/'destroyed', started/'booted'. */
      detail: string;
    }
  | { type: 'reboot'; domain: DomainRef }
  | { type: 'watchdog'; domain: DomainRef; action: string }
  | { type: 'ioError'; domain: DomainRef; device: string; path: string; action: string; reason: string }
  | { type: 'agent'; domain: DomainRef; state: 'connected' | 'disconnected' | 'unknown'; reason: string }
  /** The host is reachable (again). After a reconnect, re-read the host: events may have been missed. */
  | { type: 'connected' }
  /**
   * The host connection is gone: 'keepalive' (no answer), 'eof' (the other end closed), 'error'
   * (I/O error), 'client' (closed on purpose), 'open-failed' (a reconnect attempt failed).
   */
  | {
      type: 'disconnected';
      reason: 'keepalive' | 'eof' | 'error' | 'client' | 'open-failed' | 'unknown';
      message?: string;
    };

export type HostEventListener = (event: HostEvent) => void;

/** Why a hypervisor call failed, in the terms a controller decides by. */
export type HypervisorErrorKind =
  /** No domain with that UUID on the host. */
  | 'not-found'
  /** The domain is in the wrong state for the call (start a running domain…). */
  | 'invalid-state'
  /** The host refused the definition (bad XML, a name taken by another UUID…). */
  | 'invalid-definition'
  /** The host cannot be reached now; retry later. */
  | 'unreachable'
  /** The host's driver cannot do this. */
  | 'unsupported'
  /** Something of that name exists already (a storage volume). */
  | 'already-exists'
  /**
   * A long job was aborted before it finished: a migration stopped by abortMigration or by its
   * own timeout. Nothing moved: the domain runs where it was.
   */
  | 'aborted'
  /** Anything else libvirt reported. */
  | 'failed';

export class HypervisorError extends Error {
  constructor(
    readonly kind: HypervisorErrorKind,
    /** The host's URI. */
    readonly host: string,
    /** What was attempted, e.g. 'start 0b8e…'. */
    readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation} on ${host}: ${message}`, options);
    this.name = 'HypervisorError';
  }
}

export function isHypervisorError(error: unknown, kind?: HypervisorErrorKind): error is HypervisorError {
  return error instanceof HypervisorError && (kind === undefined || error.kind === kind);
}

/** Runs `action`, treating the given HypervisorError kinds as done (already started, already gone). */
export async function ignoring(kinds: HypervisorErrorKind[], action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (!kinds.some((kind) => isHypervisorError(error, kind))) throw error;
  }
}

/** A storage pool the controller puts volumes in: a directory pool when it makes one. */
export interface StoragePoolRef {
  name: string;
  /** The directory of a dir pool to define when the host has no pool of that name. */
  path?: string;
  /** The directory's mode when this call defines the pool (octal, e.g. '0755'); libvirt's default is 0711. */
  mode?: string;
}

export interface StoragePoolStatus {
  name: string;
  active: boolean;
  /** Bytes. */
  capacityBytes: number;
  availableBytes: number;
  /** True when this call defined (and started) the pool. */
  created: boolean;
}

export type VolumeFormat = 'qcow2' | 'raw';

export interface VolumeStatus {
  pool: string;
  name: string;
  /** The path a domain's disk uses. */
  path: string;
  format: VolumeFormat | 'unknown';
  capacityBytes: number;
  allocationBytes: number;
  /** The file a qcow2 volume reads unwritten blocks from (its backing store), when it has one. */
  backingPath?: string;
}

export interface NewVolume {
  name: string;
  format: VolumeFormat;
  capacityBytes: number;
  /** The file's mode in a directory pool (octal, e.g. '0644'); libvirt's default is 0600. */
  mode?: string;
  /** A qcow2 overlay on this file (a linked clone): unwritten blocks are read from it, never copied. */
  backingStore?: { path: string; format: VolumeFormat };
}

/** A libvirt virtual network on a host. */
export interface NetworkStatus {
  name: string;
  active: boolean;
  /** Its definition (as it runs, when active). */
  xml: string;
}

/** Where a live migration goes. */
export interface MigrationDestination {
  /**
   * The destination's libvirt URI as the SOURCE host reaches it (e.g. qemu+tcp://10.0.0.3/system):
   * migration is peer-to-peer, so the source's libvirtd connects to it, with its own credentials.
   */
  uri: string;
}

export interface MigrationOptions {
  /**
   * Disks: 'none' (default) when the destination sees the same disk files (shared storage);
   * 'all' copies every disk to a file of the same path on the destination, which must exist
   * there (same size) or be creatable in a storage pool there; 'incremental' copies only what
   * differs from a backing image both hosts share.
   */
  copyStorage?: 'none' | 'all' | 'incremental';
  /**
   * Migrate although libvirt calls it unsafe (VIR_MIGRATE_UNSAFE): disks on a file system it does
   * not know as shared, or with a cache mode other than none. Only for storage the operator says
   * is shared and coherent (HostPool spec.storage.assumeCoherent).
   */
  unsafe?: boolean;
  /** Bandwidth limit, MiB/s (whole number above 0); unlimited by default. */
  bandwidthMiBs?: number;
  /** Abort the migration when it has not finished within this many ms (rejects with 'aborted'). */
  timeoutMs?: number;
  /**
   * Default true: define the domain on the destination and undefine it on the source, as part
   * of the migration. False: the destination runs it as a transient domain and the source keeps
   * its (now inactive) definition.
   */
  persistent?: boolean;
}

/** A migration job's figures, from the host's job statistics. Bytes and ms. */
export interface MigrationProgress {
  /** A migration of this domain is running (out of this host, or into it). */
  active: boolean;
  /** 'out' on the source, 'in' on the destination; absent when not active. */
  direction?: 'out' | 'in';
  /** Memory (and disks being copied) to send in all: grows when the guest dirties memory. */
  dataTotal?: number;
  dataProcessed?: number;
  dataRemaining?: number;
  /** Since the migration started. */
  elapsedMs?: number;
  /** Passes over the guest's memory so far (1 during the first copy). */
  memIteration?: number;
  /** The disks being copied (copyStorage), part of the data figures above; absent without a copy. */
  diskTotal?: number;
  diskProcessed?: number;
  diskRemaining?: number;
}

/**
 * One domain's usage, from the host's bulk statistics (Hypervisor.domainStats). Counters are
 * cumulative since the domain's process started; a figure the host's driver does not report
 * (libvirt's test driver gives the state only; QEMU gives balloon figures from the guest only
 * with a virtio balloon whose stats period is set) is undefined, never 0.
 */
export interface DomainUsage {
  uuid: string;
  name: string;
  state: DomainState;
  /** CPU time of the whole domain (vCPUs and the hypervisor's own threads), seconds. */
  cpuSeconds?: number;
  memory: DomainMemoryUsage;
  /** One entry per disk (libvirt's block.N.*), by target name (vda, sda…). */
  disks: DiskUsage[];
  /** One entry per interface (libvirt's net.N.*), by the host-side name (vnet0…). */
  interfaces: InterfaceUsage[];
}

/** Bytes, from libvirt's balloon.* figures (KiB there). */
export interface DomainMemoryUsage {
  /** The memory the domain has now (balloon.current: the balloon's actual size). */
  currentBytes?: number;
  /** The most it may have (balloon.maximum: the domain XML's memory). */
  maximumBytes?: number;
  /** The memory the guest sees as its total (balloon.available: MemTotal); guest-reported. */
  availableBytes?: number;
  /** What the guest could give back without swapping (balloon.usable: MemAvailable); guest-reported. */
  usableBytes?: number;
  /** What the guest leaves wholly unused (balloon.unused: MemFree); guest-reported. */
  unusedBytes?: number;
  /** availableBytes − usableBytes: what the guest uses (KubeVirt's definition of used memory). */
  usedBytes?: number;
  /** Resident set size of the domain's process on the host (balloon.rss). */
  residentBytes?: number;
}

export interface DiskUsage {
  name: string;
  readBytes?: number;
  writeBytes?: number;
  readOps?: number;
  writeOps?: number;
}

export interface InterfaceUsage {
  name: string;
  rxBytes?: number;
  rxPackets?: number;
  txBytes?: number;
  txPackets?: number;
}

/** A snapshot to take (libvirt internal snapshots: the data stays in the qcow2 disk files). */
export interface NewSnapshot {
  /** The snapshot's name on the host: letters, digits, '.', '_' and '-' only. */
  name: string;
  description?: string;
  /**
   * With the RAM state (the domain resumes exactly where it was on revert); without, disks
   * only. Libvirt's QEMU driver takes a disk-only internal snapshot of a stopped domain only: a
   * running one is 'invalid-state' without memory.
   */
  memory: boolean;
}

/** A snapshot a host holds for a domain. */
export interface SnapshotInfo {
  name: string;
  description: string;
  /** When it was taken, from the host's creationTime (whole seconds). */
  createdAt: Date;
  /** The domain's state when it was taken ('running', 'paused', 'shutoff'…). */
  domainState: string;
  /** It holds the RAM state. */
  memory: boolean;
  /** Its parent snapshot's name; null for a root. */
  parent: string | null;
}

export interface RevertOptions {
  /**
   * The state after the revert: 'snapshot' (default) the one it was taken in; 'paused' the
   * vCPUs stopped (a memory snapshot) or started paused (a disk one); 'running' started.
   */
  state?: 'snapshot' | 'paused' | 'running';
}

/** One hypervisor host. Every call may reject with a HypervisorError. */
export interface Hypervisor {
  /** The host's URI. */
  readonly uri: string;

  facts(): Promise<HostFacts>;
  /** One cheap round trip to the host (its libvirt version): a heartbeat, whatever it runs. */
  ping(): Promise<void>;
  /** Every domain on the host, running or not. */
  listDomains(): Promise<DomainStatus[]>;
  /** The domain with this UUID, or undefined when the host has none. */
  lookup(uuid: string): Promise<DomainStatus | undefined>;
  /**
   * Defines the domain, or redefines it when its UUID exists (a running domain takes the new
   * definition at its next start). Idempotent: the same XML twice is one domain. The host checks
   * the XML against its schema first unless `validate` is false (the caller knows it passed).
   */
  ensureDefined(xml: string, options?: DefineOptions): Promise<DomainRef>;
  start(uuid: string, options?: StartOptions): Promise<void>;
  /** Asks the guest to shut down (ACPI); resolves before it has: watch for a stopped event. */
  shutdown(uuid: string): Promise<void>;
  /** Stops the domain at once. */
  destroy(uuid: string, options?: DestroyOptions): Promise<void>;
  suspend(uuid: string): Promise<void>;
  resume(uuid: string): Promise<void>;
  reboot(uuid: string): Promise<void>;
  /** Removes the definition (see UndefineOptions); a running domain keeps running, as transient. */
  undefine(uuid: string, options?: UndefineOptions): Promise<void>;
  state(uuid: string): Promise<DomainStatus>;
  xml(uuid: string, options?: XmlOptions): Promise<string>;
  /**
   * Changes a running domain's current memory at once (the balloon target; the guest gives the
   * memory back over time), up to the maximum it was started with. Live only: the persistent
   * definition is not touched. A stopped domain is 'invalid-state'; so is a value above the
   * running domain's maximum memory (a larger maximum needs a restart), with the maximum in the
   * message.
   */
  setMemory(uuid: string, bytes: number): Promise<void>;
  /**
   * The running domain's interfaces and their addresses, from `source`. A stopped domain is
   * 'invalid-state'; a guest agent that is not configured, not connected (yet) or not answering
   * is 'unsupported': the addresses are not known (yet).
   */
  interfaceAddresses(uuid: string, source: InterfaceAddressSource): Promise<GuestInterface[]>;
  /**
   * Events of this host. Subscriptions outlive reconnects: a listener sees 'disconnected', then
   * 'connected' when the host is back. Returns the unsubscribe function.
   */
  subscribe(listener: HostEventListener): () => void;

  /**
   * Sends guest-ping to the QEMU guest agent; resolves when it answered within `timeoutSeconds`.
   * 'unsupported' when the agent is not configured, not connected or does not answer.
   */
  guestPing(uuid: string, timeoutSeconds: number): Promise<void>;
  /**
   * Freezes the guest's filesystems through the QEMU guest agent (guest-fsfreeze-freeze), so
   * disks captured meanwhile are consistent; resolves with the number frozen. 'unsupported' when
   * the agent is not configured, not connected or does not answer within `timeoutSeconds`.
   */
  guestFsFreeze(uuid: string, timeoutSeconds: number): Promise<number>;
  /** Thaws what guestFsFreeze froze (guest-fsfreeze-thaw); resolves with the number thawed. */
  guestFsThaw(uuid: string, timeoutSeconds: number): Promise<number>;

  // ---- storage: pools by name, volumes by pool + name ----

  /**
   * Makes sure the pool exists and is active: an existing inactive pool is started; a missing
   * one is defined as a directory pool at `path` (built, started, autostarted), or, without a
   * path, rejects with 'not-found'.
   */
  ensureStoragePool(pool: StoragePoolRef): Promise<StoragePoolStatus>;
  /** The volume, or undefined when the pool has none of that name. */
  volume(pool: string, name: string): Promise<VolumeStatus | undefined>;
  /**
   * Rescans the pool's volumes: on shared storage another host may have made files this host's
   * libvirt has not listed yet (it lists a pool's volumes when the pool starts).
   */
  refreshStoragePool(pool: string): Promise<void>;
  /** A new empty volume; 'already-exists' when the name is taken. */
  createVolume(pool: string, volume: NewVolume): Promise<VolumeStatus>;
  /** A new volume with the contents of `source` (copied by the host; converted to `volume.format`). */
  cloneVolume(pool: string, volume: NewVolume, source: { pool: string; name: string }): Promise<VolumeStatus>;
  /** Deletes the volume; resolves false when there was none. */
  deleteVolume(pool: string, name: string): Promise<boolean>;
  /**
   * Writes a local file (read by the binding on a thread of its own, never through the
   * JavaScript thread) or a Buffer into the volume; resolves with the bytes sent.
   */
  uploadVolume(pool: string, name: string, source: string | Buffer): Promise<number>;
  /** Grows the volume to `capacityBytes`. */
  resizeVolume(pool: string, name: string, capacityBytes: number): Promise<void>;
  /** The volume's contents; 'failed' when it is larger than `maxBytes` (small files only: scripts). */
  downloadVolume(pool: string, name: string, maxBytes: number): Promise<Buffer>;
  /** The directory of a directory pool (its target path); 'not-found' when there is no such pool. */
  storagePoolPath(pool: string): Promise<string>;

  // ---- virtual networks, by name ----

  /** The network, or undefined when the host has none of that name. */
  network(name: string): Promise<NetworkStatus | undefined>;
  /** Defines (or redefines) a persistent network, autostarted with the host; an active one takes it at its next start. */
  defineNetwork(xml: string): Promise<void>;
  /** Starts a defined network (for a libvirt network with DHCP: its dnsmasq). */
  startNetwork(name: string): Promise<void>;
  /** Stops an active network: every guest on it loses its link. */
  stopNetwork(name: string): Promise<void>;

  // ---- live migration (this host is the source) ----

  /**
   * Live-migrates the running domain to `destination`, peer-to-peer (this host's libvirtd
   * connects to the destination's), and resolves once it runs there. The guest keeps running
   * throughout, paused only for the switch-over. Other calls, migrationProgress and
   * abortMigration among them, answer while it runs.
   *
   * Failures: 'invalid-state' when the domain is not running (or busy with another job);
   * 'not-found' when this host has no such domain; 'aborted' when abortMigration or `timeoutMs`
   * stopped it; 'failed' when the destination could not be reached from this host (the message
   * says "cannot reach the destination") or refused the domain; 'unreachable' only when this
   * host itself could not be reached. After 'aborted' and 'failed' the domain still runs here;
   * after 'unreachable' the outcome is unknown: look the domain up on both hosts.
   */
  migrate(uuid: string, destination: MigrationDestination, options?: MigrationOptions): Promise<void>;
  /**
   * The domain's migration job, on the source or the destination: `{ active: false }` when none
   * is running, undefined when the host has no such domain (on the source, once migrated away).
   */
  migrationProgress(uuid: string): Promise<MigrationProgress | undefined>;
  /**
   * Aborts the domain's outgoing migration; its migrate() rejects with 'aborted' and the domain
   * keeps running here. 'invalid-state' when no outgoing migration is running (none started
   * yet, or it has already ended either way).
   */
  abortMigration(uuid: string): Promise<void>;

  /**
   * Usage figures of every domain on the host, running or not, in one round trip (libvirt's bulk
   * domain statistics): a metrics scrape makes one call per host, not one per VM. A domain busy
   * with a job (a migration) is not waited for: it gives what can be read at once.
   */
  domainStats(): Promise<DomainUsage[]>;

  // ---- snapshots (internal, qcow2) and managed save ----

  /**
   * Takes an internal snapshot (every disk must be qcow2); resolves with it as the host holds it.
   * 'already-exists' when the domain has a snapshot of that name.
   */
  createSnapshot(uuid: string, snapshot: NewSnapshot): Promise<SnapshotInfo>;
  /** The domain's snapshots, parents before children. */
  listSnapshots(uuid: string): Promise<SnapshotInfo[]>;
  /** The snapshot, or undefined when the domain has none of that name. */
  snapshot(uuid: string, name: string): Promise<SnapshotInfo | undefined>;
  /** Deletes the snapshot and its data in the disk files; resolves false when there was none. */
  deleteSnapshot(uuid: string, name: string): Promise<boolean>;
  /** Brings disks (and memory, when captured) back to the snapshot; 'not-found' when it is gone. */
  revertSnapshot(uuid: string, name: string, options?: RevertOptions): Promise<void>;
  /**
   * Saves the running domain's memory to a file on the host and stops its process (libvirt
   * managed save); the next start() resumes from it, start({ forceBoot }) discards it.
   */
  managedSave(uuid: string): Promise<void>;
  /** The domain has a managed-save image (a start would resume it). */
  hasManagedSave(uuid: string): Promise<boolean>;
  /** Discards the managed-save image; nothing to do when there is none. */
  removeManagedSave(uuid: string): Promise<void>;

  // TODO(issue 4): guest-agent commands and console streams.
}
