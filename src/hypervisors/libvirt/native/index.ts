// Loads the native libvirt binding (build/Release/virtfleet_libvirt.node, made
// by `npm run build:native`) and gives it a typed, Promise-based face.
//
// Each LibvirtConnection owns one libvirt connection and one worker thread of
// its own; its calls run there in order, so a hung host stalls only its own
// connection, never other hosts nor Node's thread pool. Domains are named by
// UUID: no libvirt handle leaves the binding.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LibvirtError, type LibvirtErrorDetails } from './error.js';
import type {
  AllDomainStatsOptions,
  CloseEvent,
  CreateOptions,
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
  NodeInfo,
  OpenOptions,
  UndefineOptions,
  Version,
  XMLDescOptions,
} from './types.js';

export { LibvirtError, isLibvirtError, type LibvirtErrorDetails } from './error.js';
export type * from './types.js';

const ADDON = 'virtfleet_libvirt.node';

type NativeEvent = DomainEvent | CloseEvent;

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
  domainManagedSave(uuid: string): Promise<void>;
  domainHasManagedSaveImage(uuid: string): Promise<boolean>;
  domainManagedSaveRemove(uuid: string): Promise<void>;
  domainMigrate(uuid: string, options: MigrateOptions): Promise<void>;
  domainGetJobStats(uuid: string, options: { completed?: boolean }): Promise<JobStats>;
  domainAbortJob(uuid: string): Promise<void>;
  domainInterfaceAddresses(uuid: string, options: { source?: 'lease' | 'agent' | 'arp' }): Promise<InterfaceAddresses[]>;
  domainAgentCommand(uuid: string, command: string, options: { timeoutSeconds?: number }): Promise<string>;
  getAllDomainStats(options: AllDomainStatsOptions): Promise<DomainStatsRecord[]>;
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
    if (parent === dir) throw new Error(`cannot find the virtfleet repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let binding: NativeBinding | undefined;

function load(): NativeBinding {
  if (binding) return binding;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(`libvirt binding not built: ${path} is missing; run \`npm run build:native\` (needs libvirt-dev, pkg-config, g++)`);
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
    let self: LibvirtConnection | undefined;
    const native = new Connection((event) => self?.dispatch(event));
    self = new LibvirtConnection(uri, native);
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
   * Closes the connection once the calls already queued have run, and ends its
   * worker thread. Calls made afterwards reject with VIR_ERR_INVALID_CONN.
   * Calling it again returns the same promise.
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
  domainInterfaceAddresses(uuid: string, options: { source?: 'lease' | 'agent' | 'arp' } = {}): Promise<InterfaceAddresses[]> {
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

  private dispatch(event: NativeEvent): void {
    if (event.type === 'close') {
      for (const listener of [...this.closeListeners]) listener(event);
    } else {
      for (const listener of [...this.domainListeners]) listener(event);
    }
  }
}
