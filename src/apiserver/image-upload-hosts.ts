// The second half of an upload: the checked file written into a new volume on each host of the
// image's HostPool (once, through one host, when its storage is shared), through libvirt's
// storage API as the controller imports a URL. A volume whose upload fails is deleted again; a
// volume already there that status does not show as holding this upload (a half-written one of
// an upload that stopped) is replaced.
import type { ImageFormatName } from '../api/virtualmachineimage.js';
import type { HostCredentials } from '../hypervisors/libvirt/credentials.js';
import type { LibvirtConnectionPool } from '../hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../hypervisors/libvirt/driver.js';
import { HOST_POOL, type PoolObject } from '../controllers/resources.js';
import { errorText } from '../controllers/error-text.js';
import type { KubeClient } from '../runtime/kube-client.js';
import { getOrUndefined, hostCredentials } from './vm-location.js';

export interface StagedImage {
  file: string;
  format: ImageFormatName;
  sizeBytes: number;
}

export interface HostsOutcome {
  /** Hosts whose volume now holds the image. */
  done: string[];
  /** `host: why` for each host that did not get it. */
  failed: string[];
}

export class UploadHosts {
  constructor(
    private readonly client: KubeClient,
    private readonly pool: LibvirtConnectionPool,
    private readonly credentials: Map<string, HostCredentials | undefined>,
    private readonly credentialsNamespace: string,
  ) {}

  /**
   * Writes `image` to volume `volume` on the pool's hosts, but not on those in `skip` (they hold
   * it already); `onHost` hears of each host as it starts.
   */
  async write(
    poolName: string,
    volume: string,
    image: StagedImage,
    skip: readonly string[],
    onHost: (host: string, index: number, of: number) => void,
  ): Promise<HostsOutcome> {
    const pool = await getOrUndefined(() => this.client.get<PoolObject>(HOST_POOL, undefined, poolName));
    if (!pool) return { done: [], failed: [`spec.hostPoolRef: HostPool ${poolName} does not exist`] };
    const hosts = pool.spec.hosts.filter((host) => !skip.includes(host.name));
    const outcome: HostsOutcome = { done: [], failed: [] };
    for (const [index, host] of hosts.entries()) {
      onHost(host.name, index + 1, hosts.length);
      try {
        const credentials = await hostCredentials(this.client, this.credentialsNamespace, poolName, host);
        this.credentials.set(host.uri, credentials);
        const storage = pool.spec.storage;
        await writeVolume(new LibvirtHypervisor(this.pool, host.uri), storage.pool, storage.path, volume, image);
        outcome.done.push(host.name);
        // Shared storage: one volume, seen by every host.
        if (storage.shared) return outcome;
      } catch (error) {
        outcome.failed.push(`host ${host.name}: ${errorText(error)}`);
      }
    }
    return outcome;
  }
}

async function writeVolume(
  hypervisor: LibvirtHypervisor,
  pool: string,
  path: string | undefined,
  volume: string,
  image: StagedImage,
): Promise<void> {
  await hypervisor.ensureStoragePool({ name: pool, ...(path ? { path } : {}) });
  await hypervisor.deleteVolume(pool, volume);
  await hypervisor.createVolume(pool, {
    name: volume,
    format: image.format === 'qcow2' ? 'qcow2' : 'raw',
    capacityBytes: image.sizeBytes,
  });
  try {
    await hypervisor.uploadVolume(pool, volume, image.file);
  } catch (error) {
    await hypervisor.deleteVolume(pool, volume).catch(() => false);
    throw error;
  }
}
