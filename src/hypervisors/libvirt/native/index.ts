// Loads the native libvirt binding (build/Release/virtfleet_libvirt.node, made
// by `npm run build:native`) and gives it a typed, Promise-based face.
//
// Each LibvirtConnection owns one libvirt connection and one worker thread of
// its own; its calls run there in order, so a hung host stalls only its own
// connection, never other hosts nor Node's thread pool. Long calls (domain
// start and stop, migration, volume transfers) run beside it, each on a
// thread and a libvirt connection of their own, so the others do not wait for
// them; calls on the same domain still run in the order they were made.
// Domains are named by UUID: no libvirt handle leaves the binding.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LibvirtError, type LibvirtErrorDetails } from './error.js';
import type {
  AllDomainStatsOptions,
  CloseEvent,
  ConsoleOptions,
  CreateOptions,
  DHCPLease,
  DestroyOptions,
  DomainEvent,
  DomainIdentity,
  DomainInfo,
  DomainStateInfo,
  DomainStatsRecord,
  DomainSummary,
  InterfaceAddresses,
  JobStats,
  MigrateOptions,
  NetworkIdentity,
  NetworkSummary,
  NodeInfo,
  OpenOptions,
  SetMemoryOptions,
  SnapshotCreateOptions,
  SnapshotDeleteOptions,
  SnapshotListOptions,
  SnapshotRevertOptions,
  StoragePoolBuildOptions,
  StoragePoolCreateOptions,
  StoragePoolIdentity,
  StoragePoolInfo,
  StoragePoolSummary,
  StorageTransferRange,
  StorageVolCreateOptions,
  StorageVolIdentity,
  StorageVolInfo,
  StorageVolResizeOptions,
  UndefineOptions,
  Version,
  XMLDescOptions,
} from './types.js';

export { LibvirtError, isLibvirtError, type LibvirtErrorDetails } from './error.js';
export type * from './types.js';

const ADDON = 'virtfleet_libvirt.node';

type NativeEvent = DomainEvent | CloseEvent;

type NativeConsoleEvent = { type: 'data'; data: Buffer } | { type: 'end' } | { type: 'error'; error: LibvirtError };

interface NativeConnection {
  open(uri: string, options: { readOnly?: boolean; username?: string; password?: string }): Promise<void>;
  close(): Promise<void>;
  isClosed(): boolean;
  setKeepAlive(interval: number, count: number): Promise<boolean>;
  isAlive(): Promise<boolean>;
  getHostname(): Promise<string>;
  getURI(): Promise<string>;
  getCapabilities(): Promise<string>;
  getNodeInfo(): Promise<NodeInfo>;
  getFreeMemory(): Promise<number>;
  getLibVersion(): Promise<Version>;
  getVersion(): Promise<Version>;
  getType(): Promise<string>;
  listAllDomains(): Promise<DomainSummary[]>;
  lookupDomainByUUID(uuid: string): Promise<DomainIdentity>;
  lookupDomainByName(name: string): Promise<DomainIdentity>;
  defineXML(xml: string, options: { validate?: boolean }): Promise<DomainIdentity>;
  domainCreate(uuid: string, options: CreateOptions): Promise<void>;
  domainShutdown(uuid: string): Promise<void>;
  domainReboot(uuid: string): Promise<void>;
  domainDestroy(uuid: string, options: DestroyOptions): Promise<void>;
  domainSuspend(uuid: string): Promise<void>;
  domainResume(uuid: string): Promise<void>;
  domainUndefine(uuid: string, options: UndefineOptions): Promise<void>;
  domainGetState(uuid: string): Promise<DomainStateInfo>;
  domainGetXMLDesc(uuid: string, options: XMLDescOptions): Promise<string>;
  domainGetInfo(uuid: string): Promise<DomainInfo>;
  domainSetMemoryFlags(uuid: string, kib: number, options: SetMemoryOptions): Promise<void>;
  domainManagedSave(uuid: string): Promise<void>;
  domainHasManagedSaveImage(uuid: string): Promise<boolean>;
  domainManagedSaveRemove(uuid: string): Promise<void>;
  domainMigrate(uuid: string, options: MigrateOptions): Promise<void>;
  domainGetJobStats(uuid: string, options: { completed?: boolean }): Promise<JobStats>;
  domainAbortJob(uuid: string): Promise<void>;
  domainInterfaceAddresses(
    uuid: string,
    options: { source?: 'lease' | 'agent' | 'arp' },
  ): Promise<InterfaceAddresses[]>;
  domainAgentCommand(uuid: string, command: string, options: { timeoutSeconds?: number }): Promise<string>;
  getAllDomainStats(options: AllDomainStatsOptions): Promise<DomainStatsRecord[]>;

  listStoragePools(): Promise<StoragePoolSummary[]>;
  lookupStoragePoolByName(name: string): Promise<StoragePoolIdentity>;
  storagePoolDefineXML(xml: string, options: { validate?: boolean }): Promise<StoragePoolIdentity>;
  storagePoolBuild(name: string, options: StoragePoolBuildOptions): Promise<void>;
  storagePoolCreate(name: string, options: StoragePoolCreateOptions): Promise<void>;
  storagePoolDestroy(name: string): Promise<void>;
  storagePoolUndefine(name: string): Promise<void>;
  storagePoolDelete(name: string): Promise<void>;
  storagePoolRefresh(name: string): Promise<void>;
  storagePoolGetInfo(name: string): Promise<StoragePoolInfo>;
  storagePoolGetXMLDesc(name: string, options: { inactive?: boolean }): Promise<string>;
  storagePoolSetAutostart(name: string, autostart: boolean): Promise<void>;
  storagePoolListVolumes(name: string): Promise<StorageVolIdentity[]>;
  storageVolCreateXML(pool: string, xml: string, options: StorageVolCreateOptions): Promise<StorageVolIdentity>;
  storageVolCreateXMLFrom(
    pool: string,
    xml: string,
    sourceKey: string,
    options: StorageVolCreateOptions,
  ): Promise<StorageVolIdentity>;
  lookupStorageVolByKey(key: string): Promise<StorageVolIdentity>;
  lookupStorageVolByName(pool: string, name: string): Promise<StorageVolIdentity>;
  lookupStorageVolByPath(path: string): Promise<StorageVolIdentity>;
  storageVolDelete(key: string): Promise<void>;
  storageVolGetInfo(key: string): Promise<StorageVolInfo>;
  storageVolGetPath(key: string): Promise<string>;
  storageVolGetXMLDesc(key: string): Promise<string>;
  storageVolResize(key: string, capacity: number, options: StorageVolResizeOptions): Promise<void>;
  storageVolUpload(key: string, source: Buffer | string, options: StorageTransferRange): Promise<number>;
  storageVolDownload(key: string, options: StorageTransferRange & { file?: string }): Promise<Buffer | number>;

  listNetworks(): Promise<NetworkSummary[]>;
  lookupNetworkByName(name: string): Promise<NetworkIdentity>;
  networkDefineXML(xml: string, options: { validate?: boolean }): Promise<NetworkIdentity>;
  networkCreate(name: string): Promise<void>;
  networkDestroy(name: string): Promise<void>;
  networkUndefine(name: string): Promise<void>;
  networkGetXMLDesc(name: string, options: { inactive?: boolean }): Promise<string>;
  networkIsActive(name: string): Promise<boolean>;
  networkSetAutostart(name: string, autostart: boolean): Promise<void>;
  networkGetDHCPLeases(name: string, options: { mac?: string }): Promise<DHCPLease[]>;

  domainSnapshotCreateXML(uuid: string, xml: string, options: SnapshotCreateOptions): Promise<string>;
  domainSnapshotListNames(uuid: string, options: SnapshotListOptions): Promise<string[]>;
  domainSnapshotCurrent(uuid: string): Promise<string | null>;
  domainSnapshotGetParent(uuid: string, name: string): Promise<string | null>;
  domainSnapshotGetXMLDesc(uuid: string, name: string, options: { secure?: boolean }): Promise<string>;
  domainSnapshotRevert(uuid: string, name: string, options: SnapshotRevertOptions): Promise<void>;
  domainSnapshotDelete(uuid: string, name: string, options: SnapshotDeleteOptions): Promise<void>;

  domainOpenConsole(
    uuid: string,
    devName: string | null,
    options: { force?: boolean; safe?: boolean },
    listener: (event: NativeConsoleEvent) => void,
  ): Promise<number>;
  consoleWrite(id: number, data: Buffer | string): Promise<number>;
  consoleClose(id: number): Promise<void>;
}

interface NativeBinding {
  Connection: new (listener: (event: NativeEvent) => void) => NativeConnection;
  setErrorClass(cls: new (message: string, details: LibvirtErrorDetails) => Error): void;
  libraryVersion: Version;
}

/** Where the addon is: $VIRTFLEET_LIBVIRT_ADDON, else build/Release under the repository root. */
export function addonPath(): string {
  const override = process.env.VIRTFLEET_LIBVIRT_ADDON;
  if (override) return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'build', 'Release', ADDON);
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find the virtfleet repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let binding: NativeBinding | undefined;

function load(): NativeBinding {
  if (binding) return binding;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(
      `libvirt binding not built: ${path} is missing; run \`npm run build:native\` (needs libvirt-dev, pkg-config, g++)`,
    );
  }
  const loaded = createRequire(import.meta.url)(path) as NativeBinding;
  loaded.setErrorClass(LibvirtError);
  binding = loaded;
  return loaded;
}

/** The libvirt library this process runs with (not the remote daemon's: see getLibVersion). */
export function libraryVersion(): Version {
  return { ...load().libraryVersion };
}

export class LibvirtConnection {
  private readonly domainListeners = new Set<(event: DomainEvent) => void>();
  private readonly closeListeners = new Set<(event: CloseEvent) => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly uri: string,
    private readonly native: NativeConnection,
  ) {}

  /**
   * Opens `uri` (test:///default, qemu+tcp://host/system, xen+ssh://…). Domain
   * and close events are subscribed at once; add listeners with onDomainEvent
   * and onClose. Rejects with a LibvirtError (e.g. VIR_ERR_AUTH_FAILED).
   */
  static async open(uri: string, options: OpenOptions = {}): Promise<LibvirtConnection> {
    const { Connection } = load();
    const connection: { self?: LibvirtConnection } = {};
    const native = new Connection((event) => connection.self?.dispatch(event));
    const self = new LibvirtConnection(uri, native);
    connection.self = self;
    const openOptions: { readOnly?: boolean; username?: string; password?: string } = {};
    if (options.readOnly !== undefined) openOptions.readOnly = options.readOnly;
    if (options.auth?.username !== undefined) openOptions.username = options.auth.username;
    if (options.auth?.password !== undefined) openOptions.password = options.auth.password;
    try {
      await native.open(uri, openOptions);
    } catch (error) {
      // Ends the worker thread made for this connection.
      await native.close();
      throw error;
    }
    return self;
  }

  /** Lifecycle, reboot, watchdog, I/O error and agent events. Returns an unsubscribe function. */
  onDomainEvent(listener: (event: DomainEvent) => void): () => void {
    this.domainListeners.add(listener);
    return () => this.domainListeners.delete(listener);
  }

  /** The connection closed: by libvirt (reason error, eof, keepalive) or by close() ('client'). */
  onClose(listener: (event: CloseEvent) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Closes the connection once the calls already queued have run (domain
   * starts and stops included), and ends its worker thread. A migration or a
   * volume transfer in flight goes on to its end. Calls made afterwards
   * reject with VIR_ERR_INVALID_CONN. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.native.close().then(() => {
      this.dispatch({ type: 'close', reason: 'client', reasonCode: 3 });
    });
    return this.closing;
  }

  get closed(): boolean {
    return this.native.isClosed();
  }

  /**
   * Probes the other end every `intervalSeconds`; after `count` unanswered
   * probes the connection closes with reason 'keepalive'. Resolves false when
   * the other end does not support keepalive. Local drivers (test:///)
   * reject with VIR_ERR_NO_SUPPORT.
   */
  setKeepAlive(intervalSeconds: number, count: number): Promise<boolean> {
    return this.native.setKeepAlive(intervalSeconds, count);
  }

  isAlive(): Promise<boolean> {
    return this.native.isAlive();
  }

  getHostname(): Promise<string> {
    return this.native.getHostname();
  }

  /** The URI libvirt resolved the connection to. */
  getURI(): Promise<string> {
    return this.native.getURI();
  }

  /** The host's capabilities XML. */
  getCapabilities(): Promise<string> {
    return this.native.getCapabilities();
  }

  getNodeInfo(): Promise<NodeInfo> {
    return this.native.getNodeInfo();
  }

  /** Free host memory in bytes. A test:/// definition file without NUMA cells rejects. */
  getFreeMemory(): Promise<number> {
    return this.native.getFreeMemory();
  }

  /** The libvirt library version on the other end (the daemon's, for remote URIs). */
  getLibVersion(): Promise<Version> {
    return this.native.getLibVersion();
  }

  /** The hypervisor's version (QEMU's, Xen's, the test driver's). */
  getVersion(): Promise<Version> {
    return this.native.getVersion();
  }

  /** The driver: 'QEMU', 'Xen', 'TEST'… */
  getType(): Promise<string> {
    return this.native.getType();
  }

  /** Every domain, running or not, with its state and reason. */
  listAllDomains(): Promise<DomainSummary[]> {
    return this.native.listAllDomains();
  }

  /** Rejects with VIR_ERR_NO_DOMAIN when there is none. */
  lookupDomainByUUID(uuid: string): Promise<DomainIdentity> {
    return this.native.lookupDomainByUUID(uuid);
  }

  lookupDomainByName(name: string): Promise<DomainIdentity> {
    return this.native.lookupDomainByName(name);
  }

  /** Defines (or redefines, for a known UUID) a persistent domain. */
  defineXML(xml: string, options: { validate?: boolean } = {}): Promise<DomainIdentity> {
    return this.native.defineXML(xml, options);
  }

  /** Starts a defined domain. */
  domainCreate(uuid: string, options: CreateOptions = {}): Promise<void> {
    return this.native.domainCreate(uuid, options);
  }

  /** Asks the guest to shut down; resolves before it has (watch for stopped/shutdown). */
  domainShutdown(uuid: string): Promise<void> {
    return this.native.domainShutdown(uuid);
  }

  domainReboot(uuid: string): Promise<void> {
    return this.native.domainReboot(uuid);
  }

  /** Stops the domain at once (pulls the plug). */
  domainDestroy(uuid: string, options: DestroyOptions = {}): Promise<void> {
    return this.native.domainDestroy(uuid, options);
  }

  domainSuspend(uuid: string): Promise<void> {
    return this.native.domainSuspend(uuid);
  }

  domainResume(uuid: string): Promise<void> {
    return this.native.domainResume(uuid);
  }

  /** Removes the persistent definition (a running domain becomes transient). */
  domainUndefine(uuid: string, options: UndefineOptions = {}): Promise<void> {
    return this.native.domainUndefine(uuid, options);
  }

  domainGetState(uuid: string): Promise<DomainStateInfo> {
    return this.native.domainGetState(uuid);
  }

  domainGetXMLDesc(uuid: string, options: XMLDescOptions = {}): Promise<string> {
    return this.native.domainGetXMLDesc(uuid, options);
  }

  domainGetInfo(uuid: string): Promise<DomainInfo> {
    return this.native.domainGetInfo(uuid);
  }

  /**
   * Sets the domain's current memory (the balloon target), in KiB, or with
   * `maximum` its maximum (virDomainSetMemoryFlags). A value above the
   * maximum rejects with VIR_ERR_INVALID_ARG; `live` on a stopped domain with
   * VIR_ERR_OPERATION_INVALID. On QEMU the guest's balloon driver frees the
   * memory afterwards: the call returns when the target is set.
   */
  domainSetMemoryFlags(uuid: string, kib: number, options: SetMemoryOptions = {}): Promise<void> {
    return this.native.domainSetMemoryFlags(uuid, kib, options);
  }

  /** Saves the running domain's memory and stops it; the next domainCreate resumes it. */
  domainManagedSave(uuid: string): Promise<void> {
    return this.native.domainManagedSave(uuid);
  }

  domainHasManagedSaveImage(uuid: string): Promise<boolean> {
    return this.native.domainHasManagedSaveImage(uuid);
  }

  domainManagedSaveRemove(uuid: string): Promise<void> {
    return this.native.domainManagedSaveRemove(uuid);
  }

  /**
   * Migrates the domain (virDomainMigrateToURI3). The migration runs on a
   * thread of its own, so domainGetJobStats and domainAbortJob on this
   * connection answer while it runs. Resolves when it has finished.
   */
  domainMigrate(uuid: string, options: MigrateOptions): Promise<void> {
    return this.native.domainMigrate(uuid, options);
  }

  /** The domain's current job, or with `completed` the last finished one. */
  domainGetJobStats(uuid: string, options: { completed?: boolean } = {}): Promise<JobStats> {
    return this.native.domainGetJobStats(uuid, options);
  }

  /** Aborts the domain's current job (a migration); its domainMigrate rejects. */
  domainAbortJob(uuid: string): Promise<void> {
    return this.native.domainAbortJob(uuid);
  }

  /** Addresses from the libvirt network's DHCP leases (default), the guest agent, or ARP. */
  domainInterfaceAddresses(
    uuid: string,
    options: { source?: 'lease' | 'agent' | 'arp' } = {},
  ): Promise<InterfaceAddresses[]> {
    return this.native.domainInterfaceAddresses(uuid, options);
  }

  /**
   * Sends a QEMU guest-agent command (JSON text) and resolves with the
   * agent's reply (JSON text). timeoutSeconds: -2 blocks, -1 (default)
   * libvirt's default, 0 does not wait.
   */
  domainAgentCommand(uuid: string, command: string, options: { timeoutSeconds?: number } = {}): Promise<string> {
    return this.native.domainAgentCommand(uuid, command, options);
  }

  /** Statistics of every domain in one call (one round trip to a remote host). */
  getAllDomainStats(options: AllDomainStatsOptions = {}): Promise<DomainStatsRecord[]> {
    return this.native.getAllDomainStats(options);
  }

  // ---- storage pools (named by name) ----

  /** Every storage pool, active or not. */
  listStoragePools(): Promise<StoragePoolSummary[]> {
    return this.native.listStoragePools();
  }

  /** Rejects with VIR_ERR_NO_STORAGE_POOL when there is none. */
  lookupStoragePoolByName(name: string): Promise<StoragePoolIdentity> {
    return this.native.lookupStoragePoolByName(name);
  }

  /** Defines a persistent pool (e.g. `<pool type='dir'>`); it starts inactive. */
  storagePoolDefineXML(xml: string, options: { validate?: boolean } = {}): Promise<StoragePoolIdentity> {
    return this.native.storagePoolDefineXML(xml, options);
  }

  /** Makes the pool's storage (a directory pool's directory). */
  storagePoolBuild(name: string, options: StoragePoolBuildOptions = {}): Promise<void> {
    return this.native.storagePoolBuild(name, options);
  }

  /** Starts the pool, building it first with `build`. */
  storagePoolCreate(name: string, options: StoragePoolCreateOptions = {}): Promise<void> {
    return this.native.storagePoolCreate(name, options);
  }

  /** Stops the pool (its volumes stay). */
  storagePoolDestroy(name: string): Promise<void> {
    return this.native.storagePoolDestroy(name);
  }

  storagePoolUndefine(name: string): Promise<void> {
    return this.native.storagePoolUndefine(name);
  }

  /** Removes an inactive pool's storage (the opposite of build). */
  storagePoolDelete(name: string): Promise<void> {
    return this.native.storagePoolDelete(name);
  }

  /** Rescans the pool's volumes. */
  storagePoolRefresh(name: string): Promise<void> {
    return this.native.storagePoolRefresh(name);
  }

  storagePoolGetInfo(name: string): Promise<StoragePoolInfo> {
    return this.native.storagePoolGetInfo(name);
  }

  storagePoolGetXMLDesc(name: string, options: { inactive?: boolean } = {}): Promise<string> {
    return this.native.storagePoolGetXMLDesc(name, options);
  }

  storagePoolSetAutostart(name: string, autostart: boolean): Promise<void> {
    return this.native.storagePoolSetAutostart(name, autostart);
  }

  /** The pool's volumes. */
  storagePoolListVolumes(name: string): Promise<StorageVolIdentity[]> {
    return this.native.storagePoolListVolumes(name);
  }

  // ---- storage volumes (named by key) ----

  /** Creates a volume in `pool` from `<volume>` XML (name, capacity, format). */
  storageVolCreateXML(pool: string, xml: string, options: StorageVolCreateOptions = {}): Promise<StorageVolIdentity> {
    return this.native.storageVolCreateXML(pool, xml, options);
  }

  /** Creates a volume in `pool` with the contents of the volume `sourceKey` (a clone). */
  storageVolCreateXMLFrom(
    pool: string,
    xml: string,
    sourceKey: string,
    options: StorageVolCreateOptions = {},
  ): Promise<StorageVolIdentity> {
    return this.native.storageVolCreateXMLFrom(pool, xml, sourceKey, options);
  }

  /** Rejects with VIR_ERR_NO_STORAGE_VOL when there is none. */
  lookupStorageVolByKey(key: string): Promise<StorageVolIdentity> {
    return this.native.lookupStorageVolByKey(key);
  }

  lookupStorageVolByName(pool: string, name: string): Promise<StorageVolIdentity> {
    return this.native.lookupStorageVolByName(pool, name);
  }

  lookupStorageVolByPath(path: string): Promise<StorageVolIdentity> {
    return this.native.lookupStorageVolByPath(path);
  }

  storageVolDelete(key: string): Promise<void> {
    return this.native.storageVolDelete(key);
  }

  storageVolGetInfo(key: string): Promise<StorageVolInfo> {
    return this.native.storageVolGetInfo(key);
  }

  storageVolGetPath(key: string): Promise<string> {
    return this.native.storageVolGetPath(key);
  }

  storageVolGetXMLDesc(key: string): Promise<string> {
    return this.native.storageVolGetXMLDesc(key);
  }

  /** Sets the volume's capacity in bytes (or changes it by that much with `delta`). */
  storageVolResize(key: string, capacityBytes: number, options: StorageVolResizeOptions = {}): Promise<void> {
    return this.native.storageVolResize(key, capacityBytes, options);
  }

  /**
   * Writes `source` into the volume through a libvirt stream
   * (virStorageVolUpload): a Buffer (copied when called) or the path of a
   * local file, read by the binding. The transfer runs on a thread of its
   * own; the connection answers other calls meanwhile. Resolves with the
   * bytes sent. The test driver rejects with VIR_ERR_NO_SUPPORT.
   */
  storageVolUpload(key: string, source: Buffer | string, options: StorageTransferRange = {}): Promise<number> {
    return this.native.storageVolUpload(key, source, options);
  }

  /**
   * Reads the volume through a libvirt stream (virStorageVolDownload) into
   * a new local file (resolving with the bytes written) or into a Buffer.
   * Runs on a thread of its own, like storageVolUpload.
   */
  storageVolDownload(key: string, options: StorageTransferRange & { file: string }): Promise<number>;
  storageVolDownload(key: string, options?: StorageTransferRange): Promise<Buffer>;
  storageVolDownload(key: string, options: StorageTransferRange & { file?: string } = {}): Promise<Buffer | number> {
    return this.native.storageVolDownload(key, options);
  }

  // ---- networks (named by name) ----

  /** Every virtual network, active or not. */
  listNetworks(): Promise<NetworkSummary[]> {
    return this.native.listNetworks();
  }

  /** Rejects with VIR_ERR_NO_NETWORK when there is none. */
  lookupNetworkByName(name: string): Promise<NetworkIdentity> {
    return this.native.lookupNetworkByName(name);
  }

  /** Defines a persistent network; it starts inactive. */
  networkDefineXML(xml: string, options: { validate?: boolean } = {}): Promise<NetworkIdentity> {
    return this.native.networkDefineXML(xml, options);
  }

  /** Starts a defined network (virNetworkCreate). */
  networkCreate(name: string): Promise<void> {
    return this.native.networkCreate(name);
  }

  networkDestroy(name: string): Promise<void> {
    return this.native.networkDestroy(name);
  }

  networkUndefine(name: string): Promise<void> {
    return this.native.networkUndefine(name);
  }

  networkGetXMLDesc(name: string, options: { inactive?: boolean } = {}): Promise<string> {
    return this.native.networkGetXMLDesc(name, options);
  }

  networkIsActive(name: string): Promise<boolean> {
    return this.native.networkIsActive(name);
  }

  networkSetAutostart(name: string, autostart: boolean): Promise<void> {
    return this.native.networkSetAutostart(name, autostart);
  }

  /** The network's DHCP leases (optionally of one MAC). The test driver rejects with VIR_ERR_NO_SUPPORT. */
  networkGetDHCPLeases(name: string, options: { mac?: string } = {}): Promise<DHCPLease[]> {
    return this.native.networkGetDHCPLeases(name, options);
  }

  // ---- snapshots (named by domain UUID and snapshot name) ----

  /** Creates a snapshot from `<domainsnapshot>` XML; resolves with its name. */
  domainSnapshotCreateXML(uuid: string, xml: string, options: SnapshotCreateOptions = {}): Promise<string> {
    return this.native.domainSnapshotCreateXML(uuid, xml, options);
  }

  domainSnapshotListNames(uuid: string, options: SnapshotListOptions = {}): Promise<string[]> {
    return this.native.domainSnapshotListNames(uuid, options);
  }

  /** The current snapshot's name, or null when there is none. */
  domainSnapshotCurrent(uuid: string): Promise<string | null> {
    return this.native.domainSnapshotCurrent(uuid);
  }

  /** The snapshot's parent's name, or null for a root. */
  domainSnapshotGetParent(uuid: string, name: string): Promise<string | null> {
    return this.native.domainSnapshotGetParent(uuid, name);
  }

  domainSnapshotGetXMLDesc(uuid: string, name: string, options: { secure?: boolean } = {}): Promise<string> {
    return this.native.domainSnapshotGetXMLDesc(uuid, name, options);
  }

  /** Reverts the domain to the snapshot (virDomainRevertToSnapshot). */
  domainSnapshotRevert(uuid: string, name: string, options: SnapshotRevertOptions = {}): Promise<void> {
    return this.native.domainSnapshotRevert(uuid, name, options);
  }

  domainSnapshotDelete(uuid: string, name: string, options: SnapshotDeleteOptions = {}): Promise<void> {
    return this.native.domainSnapshotDelete(uuid, name, options);
  }

  // ---- console ----

  /**
   * Opens the domain's console (virDomainOpenConsole) as a non-blocking
   * stream: output arrives through onData as Buffers, read on libvirt's
   * event-loop thread. The test driver rejects with VIR_ERR_NO_SUPPORT.
   */
  async domainOpenConsole(uuid: string, options: ConsoleOptions = {}): Promise<LibvirtConsole> {
    const stream = new LibvirtConsole(this.native);
    const flags: { force?: boolean; safe?: boolean } = {};
    if (options.force !== undefined) flags.force = options.force;
    if (options.safe !== undefined) flags.safe = options.safe;
    const id = await this.native.domainOpenConsole(uuid, options.devName ?? null, flags, (event) =>
      stream.handle(event),
    );
    stream.attach(id);
    return stream;
  }

  private dispatch(event: NativeEvent): void {
    if (event.type === 'close') {
      for (const listener of [...this.closeListeners]) listener(event);
    } else {
      for (const listener of [...this.domainListeners]) listener(event);
    }
  }
}

/**
 * An open console stream (domainOpenConsole). Output that arrives before the
 * first onData listener is kept and handed to it. The stream ends once:
 * at the guest's end of stream or a libvirt error (onEnd gets the error),
 * or by close(). Closing the connection closes its consoles.
 */
export class LibvirtConsole {
  private id: number | undefined;
  private readonly dataListeners = new Set<(data: Buffer) => void>();
  private readonly endListeners = new Set<(error?: LibvirtError) => void>();
  private pending: Buffer[] = [];
  private endState: { error?: LibvirtError } | undefined;
  private closing: Promise<void> | undefined;

  /** @internal made by LibvirtConnection.domainOpenConsole */
  constructor(private readonly native: NativeConnection) {}

  /** Output of the console, in order. Returns an unsubscribe function. */
  onData(listener: (data: Buffer) => void): () => void {
    this.dataListeners.add(listener);
    if (this.pending.length > 0) {
      const pending = this.pending;
      this.pending = [];
      for (const data of pending) listener(data);
    }
    return () => this.dataListeners.delete(listener);
  }

  /** Called once when the stream ends; with the error if libvirt reported one. */
  onEnd(listener: (error?: LibvirtError) => void): () => void {
    if (this.endState) {
      const { error } = this.endState;
      queueMicrotask(() => listener(error));
      return () => undefined;
    }
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  get ended(): boolean {
    return this.endState !== undefined;
  }

  /** Sends input to the console; resolves with the bytes sent. */
  write(data: Buffer | string): Promise<number> {
    if (this.id === undefined || this.closing) {
      return Promise.reject(
        new LibvirtError('console stream is closed', {
          code: 73,
          codeName: 'VIR_ERR_INVALID_STREAM',
          domain: 0,
          domainName: 'VIR_FROM_NONE',
          level: 2,
        }),
      );
    }
    return this.native.consoleWrite(this.id, data);
  }

  /** Stops reading and frees the stream. Calling it again returns the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.id !== undefined) {
        try {
          await this.native.consoleClose(this.id);
        } catch (error) {
          // A closed connection has closed its streams already.
          if (!(error instanceof LibvirtError && error.codeName === 'VIR_ERR_INVALID_CONN')) throw error;
        }
      }
      this.finish(undefined);
    })();
    return this.closing;
  }

  /** @internal */
  attach(id: number): void {
    this.id = id;
    // The stream may have ended before its id was known.
    if (this.endState) void this.close().catch(() => undefined);
  }

  /** @internal events from the native stream */
  handle(event: NativeConsoleEvent): void {
    if (this.endState) return;
    if (event.type === 'data') {
      if (this.dataListeners.size === 0) {
        this.pending.push(event.data);
      } else {
        for (const listener of [...this.dataListeners]) listener(event.data);
      }
      return;
    }
    this.finish(event.type === 'error' ? event.error : undefined);
    // Free the native stream; nothing more will arrive.
    if (this.id !== undefined) void this.close().catch(() => undefined);
  }

  private finish(error: LibvirtError | undefined): void {
    if (this.endState) return;
    this.endState = error ? { error } : {};
    const listeners = [...this.endListeners];
    this.endListeners.clear();
    for (const listener of listeners) listener(error);
  }
}
