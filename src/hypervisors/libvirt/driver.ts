// The Hypervisor interface on libvirt: one object per host URI, borrowing the pool's connection
// for each call. It translates, and decides nothing: plain data out, libvirt errors turned into
// HypervisorErrors of a few kinds, binding events turned into HostEvents.
import type {
  DefineOptions,
  DestroyOptions,
  DomainRef,
  DomainStatus,
  DomainUsage,
  GuestInterface,
  HostEvent,
  HostEventListener,
  HostFacts,
  HostHypervisorType,
  Hypervisor,
  InterfaceAddressSource,
  MigrationDestination,
  MigrationOptions,
  MigrationProgress,
  NetworkStatus,
  NewSnapshot,
  NewVolume,
  RevertOptions,
  SnapshotInfo,
  StartOptions,
  StoragePoolRef,
  StoragePoolStatus,
  VolumeFormat,
  VolumeStatus,
  UndefineOptions,
  XmlOptions,
} from '../hypervisor.js';
import { HypervisorError, type HypervisorErrorKind } from '../hypervisor.js';
import { summarizeCapabilities } from './capabilities.js';
import { snapshotInfoOf, snapshotNameProblem, snapshotXml } from './snapshots.js';
import { domainUsageOf, USAGE_STATS_GROUPS } from './domain-stats.js';
import { traceNow, traces } from '../../runtime/trace.js';
import { child, el, parseXml, serializeXml, type XmlElement } from '../xml.js';
import { HostUnavailableError, type LibvirtConnectionPool, type LinkEvent } from './connection-pool.js';
import {
  isLibvirtError,
  LibvirtError,
  type DomainEvent,
  type DomainStateInfo,
  type InterfaceAddresses,
  type JobStats,
  type LibvirtConnection,
  type MigrateOptions as NativeMigrateOptions,
  type StorageVolIdentity,
  type UndefineOptions as NativeUndefineOptions,
  type Version,
} from './native/index.js';

export interface LibvirtHypervisorOptions {
  /**
   * Where migrate() gets its connection to this host: a second pool (same credentials), so the
   * migration's long call has a connection of its own. With libvirt 9.0's client, a call made on
   * a connection while another thread waits there for a reply (a migration) often waits for the
   * host's next keepalive probe (libvirtd's keepalive_interval, 5 s) before it is even sent; on
   * its own connection the migration leaves the shared one prompt. Default: `pool`.
   */
  migrationPool?: LibvirtConnectionPool;
  /**
   * Where ping() gets its connection: a second pool, so that a heartbeat is not queued behind a
   * slow call on the shared connection (a domain start takes seconds on a loaded host, and the
   * native binding runs one connection's calls in order). Without it, a healthy host busy
   * starting VMs misses beats and could be declared failed, and fenced. Default: `pool`.
   */
  heartbeatPool?: LibvirtConnectionPool;
}

export class LibvirtHypervisor implements Hypervisor {
  // Driver name per connection (asked once): the undefine flags a driver accepts differ.
  private readonly drivers = new WeakMap<LibvirtConnection, Promise<string>>();

  constructor(
    private readonly pool: LibvirtConnectionPool,
    readonly uri: string,
    private readonly options: LibvirtHypervisorOptions = {},
  ) {}

  async facts(): Promise<HostFacts> {
    return this.call('read host facts', async (conn) => {
      const [hostname, driver, version, libVersion, node, capabilities, freeMemory] = await Promise.all([
        conn.getHostname(),
        this.driverOf(conn),
        conn.getVersion(),
        conn.getLibVersion(),
        conn.getNodeInfo(),
        conn.getCapabilities(),
        // A test:/// definition file without NUMA cells cannot tell; the others always can.
        conn.getFreeMemory().catch(() => undefined),
      ]);
      return {
        uri: this.uri,
        hostname,
        type: hypervisorType(driver, this.uri),
        driver,
        hypervisorVersion: versionString(version),
        libvirtVersion: versionString(libVersion),
        cpu: {
          count: node.cpus,
          model: node.model,
          mhz: node.mhz,
          sockets: node.sockets,
          cores: node.cores,
          threads: node.threads,
          numaNodes: node.nodes,
        },
        memoryBytes: node.memoryKiB * 1024,
        freeMemoryBytes: freeMemory,
        capabilities: summarizeCapabilities(capabilities),
      };
    });
  }

  async ping(): Promise<void> {
    await this.call('ping', (conn) => conn.getLibVersion(), this.options.heartbeatPool);
  }

  listDomains(): Promise<DomainStatus[]> {
    return this.call('list domains', async (conn) =>
      (await conn.listAllDomains()).map((d) => ({ uuid: d.uuid, name: d.name, id: d.id, ...stateOf(d) })),
    );
  }

  lookup(uuid: string): Promise<DomainStatus | undefined> {
    return this.call(`look up domain ${uuid}`, async (conn) => {
      try {
        // Both queued at once on the connection's thread: one wait for it instead of two.
        const [identity, state] = await Promise.all([conn.lookupDomainByUUID(uuid), conn.domainGetState(uuid)]);
        return { ...identity, ...stateOf(state) };
      } catch (error) {
        // Gone between the two calls counts as gone.
        if (isLibvirtError(error, 'VIR_ERR_NO_DOMAIN')) return undefined;
        throw error;
      }
    });
  }

  ensureDefined(xml: string, options: DefineOptions = {}): Promise<DomainRef> {
    const validate = options.validate ?? true;
    return this.call(validate ? 'define domain' : 'define domain (validated before)', async (conn) => {
      // validate: the host checks the XML against its schema and names what is wrong.
      const { uuid, name } = await conn.defineXML(xml, { validate });
      return { uuid, name };
    });
  }

  start(uuid: string, options: StartOptions = {}): Promise<void> {
    return this.call(`start domain ${uuid}`, (conn) => conn.domainCreate(uuid, { ...options }));
  }

  shutdown(uuid: string): Promise<void> {
    return this.call(`shut down domain ${uuid}`, (conn) => conn.domainShutdown(uuid));
  }

  destroy(uuid: string, options: DestroyOptions = {}): Promise<void> {
    return this.call(`destroy domain ${uuid}`, (conn) => conn.domainDestroy(uuid, { ...options }));
  }

  suspend(uuid: string): Promise<void> {
    return this.call(`suspend domain ${uuid}`, (conn) => conn.domainSuspend(uuid));
  }

  resume(uuid: string): Promise<void> {
    return this.call(`resume domain ${uuid}`, (conn) => conn.domainResume(uuid));
  }

  reboot(uuid: string): Promise<void> {
    return this.call(`reboot domain ${uuid}`, (conn) => conn.domainReboot(uuid));
  }

  undefine(uuid: string, options: UndefineOptions = {}): Promise<void> {
    return this.call(`undefine domain ${uuid}`, async (conn) =>
      conn.domainUndefine(uuid, undefineFlags(await this.driverOf(conn), options.keepNvram ?? false)),
    );
  }

  state(uuid: string): Promise<DomainStatus> {
    return this.call(`read state of domain ${uuid}`, async (conn) => {
      const [identity, state] = await Promise.all([conn.lookupDomainByUUID(uuid), conn.domainGetState(uuid)]);
      return { ...identity, ...stateOf(state) };
    });
  }

  xml(uuid: string, options: XmlOptions = {}): Promise<string> {
    return this.call(`read XML of domain ${uuid}`, (conn) => conn.domainGetXMLDesc(uuid, { ...options }));
  }

  setMemory(uuid: string, bytes: number): Promise<void> {
    const operation = `set memory of domain ${uuid}`;
    return this.call(operation, async (conn) => {
      if (!Number.isSafeInteger(bytes) || bytes <= 0) {
        throw new HypervisorError(
          'failed',
          this.uri,
          operation,
          `memory must be a whole number of bytes above 0, not ${bytes}`,
        );
      }
      // libvirt takes KiB; round up, as the domain XML does.
      const kib = Math.ceil(bytes / 1024);
      try {
        // Live only: the controller redefines the persistent definition itself.
        await conn.domainSetMemoryFlags(uuid, kib, { live: true });
      } catch (error) {
        // Every driver says "cannot set memory higher than max memory" (VIR_ERR_INVALID_ARG)
        // without the maximum; read it to say what it is.
        if (!isLibvirtError(error, 'VIR_ERR_INVALID_ARG')) throw error;
        const info = await conn.domainGetInfo(uuid).catch(() => undefined);
        if (info === undefined || kib <= info.maxMemoryKiB) throw error;
        throw new HypervisorError(
          'invalid-state',
          this.uri,
          operation,
          `${kib} KiB is above the running domain's maximum memory of ${info.maxMemoryKiB} KiB; a larger maximum takes effect only when the domain is started again`,
          { cause: error },
        );
      }
    });
  }

  interfaceAddresses(uuid: string, source: InterfaceAddressSource): Promise<GuestInterface[]> {
    return this.call(`read ${source} addresses of domain ${uuid}`, async (conn) =>
      (await conn.domainInterfaceAddresses(uuid, { source })).map(guestInterface),
    );
  }

  domainStats(): Promise<DomainUsage[]> {
    return this.call('read domain statistics', async (conn) =>
      // nowait: a domain busy with a job (a migration) gives what it can at once.
      (await conn.getAllDomainStats({ groups: USAGE_STATS_GROUPS, nowait: true })).map(domainUsageOf),
    );
  }

  guestPing(uuid: string, timeoutSeconds: number): Promise<void> {
    return this.call(`ping the guest agent of domain ${uuid}`, async (conn) => {
      await conn.domainAgentCommand(uuid, '{"execute":"guest-ping"}', { timeoutSeconds });
    });
  }

  guestFsFreeze(uuid: string, timeoutSeconds: number): Promise<number> {
    return this.call(`freeze the guest filesystems of domain ${uuid}`, async (conn) =>
      agentCount(await conn.domainAgentCommand(uuid, '{"execute":"guest-fsfreeze-freeze"}', { timeoutSeconds })),
    );
  }

  guestFsThaw(uuid: string, timeoutSeconds: number): Promise<number> {
    return this.call(`thaw the guest filesystems of domain ${uuid}`, async (conn) =>
      agentCount(await conn.domainAgentCommand(uuid, '{"execute":"guest-fsfreeze-thaw"}', { timeoutSeconds })),
    );
  }

  // ---- storage ----

  ensureStoragePool(pool: StoragePoolRef): Promise<StoragePoolStatus> {
    return this.call(`ensure storage pool ${pool.name}`, async (conn) => {
      let created = false;
      const existing = (await conn.listStoragePools()).find((p) => p.name === pool.name);
      if (!existing) {
        if (!pool.path) {
          throw new HypervisorError(
            'not-found',
            this.uri,
            `ensure storage pool ${pool.name}`,
            `the host has no storage pool ${pool.name} and no directory was given to create one`,
          );
        }
        await conn.storagePoolDefineXML(
          serializeXml(
            el(
              'pool',
              { type: 'dir' },
              el('name', {}, pool.name),
              el('target', {}, el('path', {}, pool.path), permissionsXml(pool.mode)),
            ),
          ),
        );
        created = true;
        // build makes the directory (and leaves an existing one alone). Not create's build flag:
        // the test driver refuses it.
        await conn.storagePoolBuild(pool.name);
        await conn.storagePoolCreate(pool.name);
        await conn.storagePoolSetAutostart(pool.name, true);
      } else if (!existing.active) {
        await conn.storagePoolCreate(pool.name);
      }
      const info = await conn.storagePoolGetInfo(pool.name);
      return {
        name: pool.name,
        active: info.state === 'running',
        capacityBytes: info.capacity,
        availableBytes: info.available,
        created,
      };
    });
  }

  volume(pool: string, name: string): Promise<VolumeStatus | undefined> {
    return this.call(`look up volume ${name} in pool ${pool}`, async (conn) => {
      try {
        return await volumeStatus(conn, pool, await conn.lookupStorageVolByName(pool, name));
      } catch (error) {
        if (isLibvirtError(error, 'VIR_ERR_NO_STORAGE_VOL')) return undefined;
        throw error;
      }
    });
  }

  createVolume(pool: string, volume: NewVolume): Promise<VolumeStatus> {
    return this.call(`create volume ${volume.name} in pool ${pool}`, async (conn) =>
      volumeStatus(conn, pool, await conn.storageVolCreateXML(pool, volumeXml(volume))),
    );
  }

  cloneVolume(pool: string, volume: NewVolume, source: { pool: string; name: string }): Promise<VolumeStatus> {
    return this.call(`clone volume ${source.pool}/${source.name} to ${volume.name} in pool ${pool}`, async (conn) => {
      const from = await conn.lookupStorageVolByName(source.pool, source.name);
      return volumeStatus(conn, pool, await conn.storageVolCreateXMLFrom(pool, volumeXml(volume), from.key));
    });
  }

  deleteVolume(pool: string, name: string): Promise<boolean> {
    return this.call(`delete volume ${name} in pool ${pool}`, async (conn) => {
      try {
        await conn.storageVolDelete((await conn.lookupStorageVolByName(pool, name)).key);
        return true;
      } catch (error) {
        if (isLibvirtError(error, 'VIR_ERR_NO_STORAGE_VOL')) return false;
        throw error;
      }
    });
  }

  uploadVolume(pool: string, name: string, source: string | Buffer): Promise<number> {
    return this.call(`upload into volume ${name} in pool ${pool}`, async (conn) =>
      conn.storageVolUpload((await conn.lookupStorageVolByName(pool, name)).key, source),
    );
  }

  resizeVolume(pool: string, name: string, capacityBytes: number): Promise<void> {
    return this.call(`resize volume ${name} in pool ${pool}`, async (conn) =>
      conn.storageVolResize((await conn.lookupStorageVolByName(pool, name)).key, capacityBytes),
    );
  }

  downloadVolume(pool: string, name: string, maxBytes: number): Promise<Buffer> {
    const operation = `download volume ${name} in pool ${pool}`;
    return this.call(operation, async (conn) => {
      const key = (await conn.lookupStorageVolByName(pool, name)).key;
      const info = await conn.storageVolGetInfo(key);
      if (info.capacity > maxBytes)
        throw new HypervisorError(
          'failed',
          this.uri,
          operation,
          `the volume holds ${info.capacity} bytes, more than the ${maxBytes} asked for`,
        );
      const data = await conn.storageVolDownload(key, {});
      if (!Buffer.isBuffer(data))
        throw new HypervisorError('failed', this.uri, operation, 'the binding gave no contents');
      return data;
    });
  }

  refreshStoragePool(pool: string): Promise<void> {
    return this.call(`refresh storage pool ${pool}`, (conn) => conn.storagePoolRefresh(pool));
  }

  storagePoolPath(pool: string): Promise<string> {
    const operation = `read the directory of storage pool ${pool}`;
    return this.call(operation, async (conn) => {
      const path = child(parseXml(await conn.storagePoolGetXMLDesc(pool, {})), 'target', 'path')?.text.trim();
      if (!path)
        throw new HypervisorError(
          'unsupported',
          this.uri,
          operation,
          `storage pool ${pool} has no target path: it is no directory pool`,
        );
      return path;
    });
  }

  // ---- networks ----

  network(name: string): Promise<NetworkStatus | undefined> {
    return this.call(`look up network ${name}`, async (conn) => {
      try {
        const [active, xml] = await Promise.all([conn.networkIsActive(name), conn.networkGetXMLDesc(name, {})]);
        return { name, active, xml };
      } catch (error) {
        if (isLibvirtError(error, 'VIR_ERR_NO_NETWORK')) return undefined;
        throw error;
      }
    });
  }

  defineNetwork(xml: string): Promise<void> {
    return this.call('define network', async (conn) => {
      const { name } = await conn.networkDefineXML(xml, { validate: true });
      await conn.networkSetAutostart(name, true);
    });
  }

  startNetwork(name: string): Promise<void> {
    return this.call(`start network ${name}`, (conn) => conn.networkCreate(name));
  }

  stopNetwork(name: string): Promise<void> {
    return this.call(`stop network ${name}`, (conn) => conn.networkDestroy(name));
  }

  // ---- live migration ----

  migrate(uuid: string, destination: MigrationDestination, options: MigrationOptions = {}): Promise<void> {
    const operation = `migrate domain ${uuid} to ${destination.uri}`;
    return this.call(operation, async (conn) => {
      const native = nativeMigrateOptions(
        destination,
        options,
        (message) => new HypervisorError('failed', this.uri, operation, message),
      );
      // The migration's own connection (see LibvirtHypervisorOptions); progress and abort use the
      // shared one.
      const migrating = this.options.migrationPool ? await this.options.migrationPool.connection(this.uri) : conn;
      let settled = false;
      let timedOut = false;
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              void abortUntilSettled(conn, uuid, () => settled);
            }, options.timeoutMs);
      try {
        await migrating.domainMigrate(uuid, native);
      } catch (error) {
        settled = true;
        throw await this.migrationError(
          migrating,
          error,
          operation,
          destination,
          timedOut ? options.timeoutMs : undefined,
        );
      } finally {
        settled = true;
        clearTimeout(timer);
      }
    });
  }

  migrationProgress(uuid: string): Promise<MigrationProgress | undefined> {
    return this.call(`read migration progress of domain ${uuid}`, (conn) => readProgress(conn, uuid));
  }

  abortMigration(uuid: string): Promise<void> {
    const operation = `abort migration of domain ${uuid}`;
    return this.call(operation, async (conn) => {
      // virDomainAbortJob aborts whatever job runs (a save, a dump…): make sure it is ours.
      const job = await readProgress(conn, uuid);
      if (job === undefined)
        throw new HypervisorError('not-found', this.uri, operation, `the host has no domain ${uuid}`);
      if (job.direction !== 'out') {
        throw new HypervisorError(
          'invalid-state',
          this.uri,
          operation,
          job.active ? 'the domain is migrating into this host, not out of it' : 'no outgoing migration is running',
        );
      }
      await conn.domainAbortJob(uuid);
    });
  }

  /** A failed domainMigrate in the interface's terms: aborted, the destination's fault, or the usual kinds. */
  private async migrationError(
    conn: LibvirtConnection,
    error: unknown,
    operation: string,
    destination: MigrationDestination,
    timeoutMs: number | undefined,
  ): Promise<HypervisorError> {
    if (isLibvirtError(error, 'VIR_ERR_OPERATION_ABORTED')) {
      const why = timeoutMs === undefined ? 'aborted' : `not finished within ${timeoutMs} ms: aborted`;
      return new HypervisorError('aborted', this.uri, operation, `${why}; the domain runs on here (${error.message})`, {
        cause: error,
      });
    }
    const mapped = toHypervisorError(error, this.uri, operation);
    if (!(error instanceof LibvirtError)) return mapped;
    const failed = (message: string) =>
      new HypervisorError('failed', this.uri, operation, `${message} (${error.message}; ${error.codeName})`, {
        cause: error,
      });
    // libvirt 9.0 calls every disk on a local file system unsafe to migrate without copying it,
    // whatever its cache mode; NFS, GFS2, OCFS2, CephFS and the like are shared.
    if (error.codeName === 'VIR_ERR_MIGRATE_UNSAFE')
      return failed(
        'the disks are not on storage the destination shares (or use a cache mode that is unsafe for migration): copy them (copyStorage)',
      );
    // Copying disks, the destination needs a file at each disk's path, or a storage pool over its
    // directory to create it in. (Not 'not-found': that would say the domain is missing.)
    if (error.codeName === 'VIR_ERR_NO_STORAGE_POOL' || error.codeName === 'VIR_ERR_NO_STORAGE_VOL') {
      return failed(
        "the destination has neither a file at a copied disk's path nor a storage pool over its directory to create one in",
      );
    }
    // Peer-to-peer, this host's libvirtd connects to the destination; when it cannot, libvirt
    // says "Failed to connect to remote libvirt URI …" (VIR_ERR_OPERATION_FAILED).
    let destinationUnreachable = /failed to connect to remote libvirt URI/i.test(error.message);
    // The destination connection's RPC errors (it dropped mid-way) come back with RPC codes that
    // would read as this host being unreachable: they are, only if our connection is gone too.
    if (!destinationUnreachable && mapped.kind === 'unreachable') {
      destinationUnreachable = await conn.isAlive().catch(() => false);
    }
    if (!destinationUnreachable) return mapped;
    return new HypervisorError(
      'failed',
      this.uri,
      operation,
      `cannot reach the destination ${destination.uri} from this host: ${error.message} (${error.codeName})`,
      {
        cause: error,
      },
    );
  }

  // ---- snapshots and managed save ----

  createSnapshot(uuid: string, snapshot: NewSnapshot): Promise<SnapshotInfo> {
    const operation = `snapshot domain ${uuid} as ${snapshot.name}`;
    return this.call(operation, async (conn) => {
      const problem = snapshotNameProblem(snapshot.name);
      if (problem) throw new HypervisorError('invalid-definition', this.uri, operation, problem);
      const existing = await conn.domainSnapshotListNames(uuid, {});
      if (existing.includes(snapshot.name))
        throw new HypervisorError('already-exists', this.uri, operation, `the domain has a snapshot ${snapshot.name}`);
      const name = await conn.domainSnapshotCreateXML(uuid, snapshotXml(snapshot), {});
      return snapshotInfoOf(
        await conn.domainSnapshotGetXMLDesc(uuid, name, {}),
        await conn.domainSnapshotGetParent(uuid, name),
      );
    });
  }

  listSnapshots(uuid: string): Promise<SnapshotInfo[]> {
    return this.call(`list snapshots of domain ${uuid}`, async (conn) => {
      const names = await conn.domainSnapshotListNames(uuid, { topological: true });
      return Promise.all(
        names.map(async (name) =>
          snapshotInfoOf(
            await conn.domainSnapshotGetXMLDesc(uuid, name, {}),
            await conn.domainSnapshotGetParent(uuid, name),
          ),
        ),
      );
    });
  }

  snapshot(uuid: string, name: string): Promise<SnapshotInfo | undefined> {
    return this.call(`look up snapshot ${name} of domain ${uuid}`, async (conn) => {
      if (!(await conn.domainSnapshotListNames(uuid, {})).includes(name)) return undefined;
      return snapshotInfoOf(
        await conn.domainSnapshotGetXMLDesc(uuid, name, {}),
        await conn.domainSnapshotGetParent(uuid, name),
      );
    });
  }

  deleteSnapshot(uuid: string, name: string): Promise<boolean> {
    return this.call(`delete snapshot ${name} of domain ${uuid}`, async (conn) => {
      try {
        await conn.domainSnapshotDelete(uuid, name, {});
        return true;
      } catch (error) {
        if (isLibvirtError(error) && error.codeName === 'VIR_ERR_NO_DOMAIN_SNAPSHOT') return false;
        throw error;
      }
    });
  }

  revertSnapshot(uuid: string, name: string, options: RevertOptions = {}): Promise<void> {
    const state = options.state ?? 'snapshot';
    return this.call(`revert domain ${uuid} to snapshot ${name}`, async (conn) => {
      try {
        await conn.domainSnapshotRevert(uuid, name, {
          ...(state === 'running' ? { running: true } : {}),
          ...(state === 'paused' ? { paused: true } : {}),
        });
      } catch (error) {
        if (isLibvirtError(error) && error.codeName === 'VIR_ERR_NO_DOMAIN_SNAPSHOT')
          throw new HypervisorError('not-found', this.uri, `revert domain ${uuid} to snapshot ${name}`, error.message, {
            cause: error,
          });
        throw error;
      }
    });
  }

  managedSave(uuid: string): Promise<void> {
    return this.call(`save domain ${uuid} (managed save)`, (conn) => conn.domainManagedSave(uuid));
  }

  hasManagedSave(uuid: string): Promise<boolean> {
    return this.call(`look for a managed-save image of domain ${uuid}`, (conn) => conn.domainHasManagedSaveImage(uuid));
  }

  removeManagedSave(uuid: string): Promise<void> {
    return this.call(`remove the managed-save image of domain ${uuid}`, (conn) => conn.domainManagedSaveRemove(uuid));
  }

  subscribe(listener: HostEventListener): () => void {
    return this.pool.subscribe(this.uri, (event) => {
      const hostEvent = toHostEvent(event);
      if (hostEvent) listener(hostEvent);
    });
  }

  private driverOf(conn: LibvirtConnection): Promise<string> {
    let driver = this.drivers.get(conn);
    if (!driver) {
      driver = conn.getType();
      driver.catch(() => this.drivers.delete(conn));
      this.drivers.set(conn, driver);
    }
    return driver;
  }

  /** Runs `action` on this host's connection of `pool` (the shared one unless given), errors as HypervisorErrors. */
  private async call<T>(
    operation: string,
    action: (conn: LibvirtConnection) => Promise<T>,
    pool: LibvirtConnectionPool = this.pool,
  ): Promise<T> {
    const start = traces.hypervisorCall.hasSubscribers ? traceNow() : 0;
    try {
      const result = await action(await pool.connection(this.uri));
      if (start) traces.hypervisorCall.publish({ uri: this.uri, operation, start, ms: traceNow() - start });
      return result;
    } catch (error) {
      const failure = toHypervisorError(error, this.uri, operation);
      if (start)
        traces.hypervisorCall.publish({ uri: this.uri, operation, start, ms: traceNow() - start, error: failure.kind });
      throw failure;
    }
  }
}

function nativeMigrateOptions(
  destination: MigrationDestination,
  options: MigrationOptions,
  invalid: (message: string) => Error,
): NativeMigrateOptions {
  if (typeof destination.uri !== 'string' || destination.uri === '') throw invalid('the destination URI is empty');
  const { copyStorage = 'none', bandwidthMiBs, timeoutMs, persistent = true } = options;
  if (copyStorage !== 'none' && copyStorage !== 'all' && copyStorage !== 'incremental') {
    throw invalid(`copyStorage must be 'none', 'all' or 'incremental', not ${JSON.stringify(copyStorage)}`);
  }
  if (bandwidthMiBs !== undefined && (!Number.isSafeInteger(bandwidthMiBs) || bandwidthMiBs <= 0)) {
    throw invalid(`bandwidthMiBs must be a whole number above 0, not ${bandwidthMiBs}`);
  }
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0))
    throw invalid(`timeoutMs must be above 0, not ${timeoutMs}`);
  // Live and peer-to-peer: the QEMU driver refuses "direct" migration, and a client-managed one
  // would need a connection from here to the destination as well.
  const native: NativeMigrateOptions = {
    destinationUri: destination.uri,
    peerToPeer: true,
    live: true,
    persistDestination: persistent,
    undefineSource: persistent,
  };
  if (copyStorage !== 'none') native.copyStorage = copyStorage;
  if (options.unsafe === true) native.unsafe = true;
  if (bandwidthMiBs !== undefined) native.bandwidthMiBps = bandwidthMiBs;
  return native;
}

/**
 * Aborts the domain's job, again every 200 ms while it refuses and the migration has not ended:
 * early on, the host may not have started the job yet ("no job is active on the domain").
 */
async function abortUntilSettled(conn: LibvirtConnection, uuid: string, settled: () => boolean): Promise<void> {
  while (!settled()) {
    try {
      await conn.domainAbortJob(uuid);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function readProgress(conn: LibvirtConnection, uuid: string): Promise<MigrationProgress | undefined> {
  try {
    return progressOf(await conn.domainGetJobStats(uuid));
  } catch (error) {
    if (isLibvirtError(error, 'VIR_ERR_NO_DOMAIN')) return undefined;
    // The destination has a job but no figures: libvirt keeps them on the source.
    if (isLibvirtError(error, 'VIR_ERR_OPERATION_UNSUPPORTED') && /only on the source host/.test(error.message))
      return { active: true, direction: 'in' };
    // Not running: no job.
    if (isLibvirtError(error, 'VIR_ERR_OPERATION_INVALID')) return { active: false };
    throw error;
  }
}

function progressOf(job: JobStats): MigrationProgress {
  const running = job.type === 'bounded' || job.type === 'unbounded';
  const direction = job.operation === 'migration_out' ? 'out' : job.operation === 'migration_in' ? 'in' : undefined;
  if (!running || direction === undefined) return { active: false };
  const progress: MigrationProgress = { active: true, direction };
  const number = (field: string): number | undefined => {
    const value = job.stats[field];
    return typeof value === 'number' ? value : undefined;
  };
  const fields = [
    ['dataTotal', 'data_total'],
    ['dataProcessed', 'data_processed'],
    ['dataRemaining', 'data_remaining'],
    ['elapsedMs', 'time_elapsed'],
    ['memIteration', 'memory_iteration'],
    ['diskTotal', 'disk_total'],
    ['diskProcessed', 'disk_processed'],
    ['diskRemaining', 'disk_remaining'],
  ] as const;
  for (const [key, field] of fields) {
    const value = number(field);
    if (value !== undefined) progress[key] = value;
  }
  return progress;
}

function guestInterface(iface: InterfaceAddresses): GuestInterface {
  const addresses: GuestInterface['addresses'] = [];
  for (const a of iface.addresses) {
    // A type newer than the binding's headers ('unknown') is left out.
    if (a.type === 'ipv4' || a.type === 'ipv6') addresses.push({ type: a.type, address: a.address, prefix: a.prefix });
  }
  return { name: iface.name, mac: iface.hwaddr.toLowerCase(), addresses };
}

function volumeXml(volume: NewVolume): string {
  return serializeXml(
    el(
      'volume',
      {},
      el('name', {}, volume.name),
      el('capacity', { unit: 'bytes' }, String(volume.capacityBytes)),
      el('target', {}, el('format', { type: volume.format }), permissionsXml(volume.mode)),
      volume.backingStore
        ? el(
            'backingStore',
            {},
            el('path', {}, volume.backingStore.path),
            el('format', { type: volume.backingStore.format }),
          )
        : undefined,
    ),
  );
}

/** libvirt's <permissions><mode> for a pool directory or a volume file (octal digits only), or nothing. */
function permissionsXml(mode: string | undefined): XmlElement | undefined {
  if (mode === undefined) return undefined;
  if (!/^0?[0-7]{3}$/.test(mode)) throw new Error(`file mode ${JSON.stringify(mode)} is not octal, e.g. 0644`);
  return el('permissions', {}, el('mode', {}, mode));
}

async function volumeStatus(
  conn: LibvirtConnection,
  pool: string,
  identity: StorageVolIdentity,
): Promise<VolumeStatus> {
  const [info, xml] = await Promise.all([
    conn.storageVolGetInfo(identity.key),
    conn.storageVolGetXMLDesc(identity.key),
  ]);
  const parsed = parseXml(xml);
  const type = child(parsed, 'target', 'format')?.attrs.type;
  const format: VolumeFormat | 'unknown' = type === 'qcow2' || type === 'raw' ? type : 'unknown';
  const backingPath = child(parsed, 'backingStore', 'path')?.text.trim();
  return {
    pool,
    name: identity.name,
    path: identity.path,
    format,
    capacityBytes: info.capacity,
    allocationBytes: info.allocation,
    ...(backingPath ? { backingPath } : {}),
  };
}

function hypervisorType(driver: string, uri: string): HostHypervisorType {
  switch (driver.toUpperCase()) {
    case 'QEMU':
      return 'kvm';
    case 'XEN':
    case 'LIBXL':
      return 'xen';
    case 'TEST':
      return 'test';
    default:
      throw new HypervisorError(
        'unsupported',
        uri,
        'read host facts',
        `libvirt driver ${JSON.stringify(driver)} is neither QEMU, Xen nor TEST`,
      );
  }
}

function versionString(version: Version): string {
  return `${version.major}.${version.minor}.${version.micro}`;
}

function stateOf(info: DomainStateInfo): Pick<DomainStatus, 'state' | 'reason'> {
  return { state: info.state, reason: info.reason };
}

/**
 * Undefine removes everything that would make libvirt refuse it or would outlive the domain:
 * managed-save image, snapshot and checkpoint metadata, NVRAM. Drivers accept different
 * subsets, and refuse a call with a flag they do not know, so the flags follow the driver.
 */
function undefineFlags(driver: string, keepNvram: boolean): NativeUndefineOptions {
  const nvram = keepNvram ? { keepNvram: true } : { nvram: true };
  switch (driver.toUpperCase()) {
    case 'QEMU':
      return { managedSave: true, snapshotsMetadata: true, checkpointsMetadata: true, ...nvram };
    case 'XEN':
    case 'LIBXL':
      return { managedSave: true, ...nvram };
    default:
      // The test driver takes only these two.
      return { managedSave: true, snapshotsMetadata: true };
  }
}

const KIND_BY_CODE: Record<string, HypervisorErrorKind> = {
  VIR_ERR_NO_DOMAIN: 'not-found',
  VIR_ERR_NO_STORAGE_POOL: 'not-found',
  VIR_ERR_NO_STORAGE_VOL: 'not-found',
  VIR_ERR_NO_NETWORK: 'not-found',
  VIR_ERR_STORAGE_VOL_EXIST: 'already-exists',
  VIR_ERR_NETWORK_EXIST: 'already-exists',
  VIR_ERR_OPERATION_INVALID: 'invalid-state',
  VIR_ERR_XML_ERROR: 'invalid-definition',
  VIR_ERR_XML_DETAIL: 'invalid-definition',
  VIR_ERR_XML_INVALID_SCHEMA: 'invalid-definition',
  VIR_ERR_CONFIG_UNSUPPORTED: 'invalid-definition',
  VIR_ERR_DOM_EXIST: 'invalid-definition',
  VIR_ERR_NO_SUPPORT: 'unsupported',
  VIR_ERR_ARGUMENT_UNSUPPORTED: 'unsupported',
  // The guest agent is not connected (yet), not answering, or out of step: what it would
  // report is not known now. (Not configured at all is VIR_ERR_ARGUMENT_UNSUPPORTED.)
  VIR_ERR_AGENT_UNRESPONSIVE: 'unsupported',
  VIR_ERR_AGENT_UNSYNCED: 'unsupported',
  VIR_ERR_INVALID_CONN: 'unreachable',
  VIR_ERR_NO_CONNECT: 'unreachable',
  VIR_ERR_RPC: 'unreachable',
  VIR_ERR_SYSTEM_ERROR: 'unreachable',
  VIR_ERR_AUTH_FAILED: 'unreachable',
  VIR_ERR_AUTH_UNAVAILABLE: 'unreachable',
};

export function toHypervisorError(error: unknown, uri: string, operation: string): HypervisorError {
  if (error instanceof HypervisorError) return error;
  if (error instanceof HostUnavailableError)
    return new HypervisorError('unreachable', uri, operation, error.message, { cause: error });
  if (error instanceof LibvirtError) {
    let kind = KIND_BY_CODE[error.codeName] ?? (error.domainName === 'VIR_FROM_RPC' ? 'unreachable' : 'failed');
    // libvirt says "operation failed" when a define names a domain that exists with another UUID.
    if (kind === 'failed' && operation === 'define domain' && error.codeName === 'VIR_ERR_OPERATION_FAILED')
      kind = 'invalid-definition';
    return new HypervisorError(kind, uri, operation, `${error.message} (${error.codeName})`, { cause: error });
  }
  return new HypervisorError('failed', uri, operation, error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}

function toHostEvent(event: LinkEvent): HostEvent | undefined {
  switch (event.type) {
    case 'connected':
      return { type: 'connected' };
    case 'disconnected':
      return event.message === undefined
        ? { type: 'disconnected', reason: event.reason }
        : { type: 'disconnected', reason: event.reason, message: event.message };
    case 'domain':
      return toDomainEvent(event.event);
  }
}

function toDomainEvent(event: DomainEvent): HostEvent {
  const domain = { uuid: event.domain.uuid, name: event.domain.name };
  switch (event.type) {
    case 'lifecycle':
      return { type: 'lifecycle', domain, event: event.event, detail: event.detail };
    case 'reboot':
      return { type: 'reboot', domain };
    case 'watchdog':
      return { type: 'watchdog', domain, action: event.action };
    case 'ioError':
      return {
        type: 'ioError',
        domain,
        device: event.devAlias,
        path: event.srcPath,
        action: event.action,
        reason: event.reason,
      };
    case 'agentLifecycle':
      return { type: 'agent', domain, state: event.state, reason: event.reason };
  }
}

/** The count a guest-fsfreeze-freeze/-thaw reply carries ({"return": N}); 0 when it has none. */
function agentCount(reply: string): number {
  const value = (JSON.parse(reply) as { return?: unknown }).return;
  return typeof value === 'number' ? value : 0;
}
