// spec.cloudInit on the host: the NoCloud seed (src/provisioning/cloud-init.ts) rendered from the
// spec and the Secrets it names, written as a raw volume `<domain>_cloud-init.iso` in the
// HostPool's storage pool (through the storage API, so any host, local or remote, gets it), and
// attached to the domain as a read-only CD-ROM. Part of the disks step (disks.ts).
//
// Secrets are read by GET at each reconcile that needs the seed (the controller may only `get`
// Secrets in a user's namespace; see installprofile.ts). Their values live only in this call:
// messages name the Secret and key, never a value. The volume is rewritten when its bytes differ
// from the rendering (the image is deterministic: same spec and Secrets, same bytes), which this
// process remembers by hash so that an unchanged seed costs no download.
import { createHash } from 'node:crypto';
import type { VirtualMachineSpec } from '../../api/virtualmachine.js';
import type { DiskBacking } from '../../hypervisors/domain-xml.js';
import { isHypervisorError, type Hypervisor } from '../../hypervisors/hypervisor.js';
import { CloudInitError, renderSeed } from '../../provisioning/cloud-init.js';
import type { SecretLookup } from '../../provisioning/profile-secrets.js';
import type { VmObject } from '../resources.js';
import type { StorageSpec } from '../vm-storage.js';
import { volumeNameOf } from '../vm-storage.js';

/**
 * The seed's name among the VM's volumes, and its key in the disk backings the disks step hands
 * to the domain step (vm-domain.ts turns it into the CD-ROM). Not a DNS label (it has a dot), so
 * no spec.disks[] entry can have it.
 */
export const CLOUD_INIT_SEED = 'cloud-init.iso';

export type SeedOutcome =
  | { state: 'ready'; backing: DiskBacking; written: boolean }
  /** A value or Secret the seed cannot be made from; the message names the field and the fix. */
  | { state: 'failed'; message: string };

type CloudInitSpec = NonNullable<VirtualMachineSpec['cloudInit']>;
type SecretKeyRef = NonNullable<CloudInitSpec['userDataSecretRef']>;

export class CloudInitSeeds {
  /** By VM UID: `${uri} ${pool} ${sha256}` of the seed this process wrote or checked, and its path. */
  private readonly known = new Map<string, { key: string; path: string }>();

  constructor(private readonly secrets: (namespace: string) => SecretLookup) {}

  /** The seed on the host, written when missing or different. Rejects only with hypervisor errors. */
  async ensure(vm: VmObject, storage: StorageSpec, hypervisor: Hypervisor): Promise<SeedOutcome> {
    const spec = vm.spec.cloudInit;
    if (!spec) throw new Error('ensure called for a VM without spec.cloudInit');
    const { namespace = '', name = '', uid = '' } = vm.metadata;
    const lookup = this.secrets(namespace);
    const userData = await text(spec.userData, spec.userDataSecretRef, 'userData', namespace, lookup);
    if ('problem' in userData) return { state: 'failed', message: userData.problem };
    const network = await text(spec.networkConfig, spec.networkConfigSecretRef, 'networkConfig', namespace, lookup);
    if ('problem' in network) return { state: 'failed', message: network.problem };
    let iso: Buffer;
    try {
      ({ iso } = renderSeed({
        instanceId: uid,
        hostname: name,
        userData: userData.value ?? '',
        userDataField: userData.field,
        ...(network.value !== undefined ? { networkConfig: network.value, networkConfigField: network.field } : {}),
        date: new Date(vm.metadata.creationTimestamp ?? 0),
      }));
    } catch (error) {
      if (error instanceof CloudInitError) return { state: 'failed', message: `${error.message}; fix it` };
      throw error;
    }
    const volumeName = volumeNameOf(vm, CLOUD_INIT_SEED);
    const key = `${hypervisor.uri} ${storage.pool} ${createHash('sha256').update(iso).digest('hex')}`;
    const known = this.known.get(uid);
    if (known?.key === key) return { state: 'ready', backing: { path: known.path, format: 'raw' }, written: false };

    // A VM without disks has had no pool made for it by the disks' provisioner.
    const pool = await hypervisor.ensureStoragePool({
      name: storage.pool,
      ...(storage.path ? { path: storage.path } : {}),
    });
    if (!pool.active) throw new Error(`storage pool ${storage.pool} is not active`);
    const existing = await hypervisor.volume(storage.pool, volumeName);
    if (existing && existing.capacityBytes === iso.length) {
      const on = await hypervisor.downloadVolume(storage.pool, volumeName, iso.length).catch((error: unknown) => {
        if (isHypervisorError(error, 'unreachable')) throw error;
        return undefined;
      });
      if (on?.equals(iso)) {
        this.known.set(uid, { key, path: existing.path });
        return { state: 'ready', backing: { path: existing.path, format: 'raw' }, written: false };
      }
    }
    await hypervisor.deleteVolume(storage.pool, volumeName);
    const volume = await hypervisor.createVolume(storage.pool, {
      name: volumeName,
      format: 'raw',
      capacityBytes: iso.length,
    });
    try {
      await hypervisor.uploadVolume(storage.pool, volumeName, iso);
    } catch (error) {
      // A half-written seed must not be taken for the real one by the next reconcile.
      await hypervisor.deleteVolume(storage.pool, volumeName).catch(() => false);
      throw error;
    }
    this.known.set(uid, { key, path: volume.path });
    return { state: 'ready', backing: { path: volume.path, format: 'raw' }, written: true };
  }

  /** Deletes the VM's seed volume; true when there was one. */
  async remove(vm: VmObject, storage: StorageSpec, hypervisor: Hypervisor): Promise<boolean> {
    this.forget(vm.metadata.uid ?? '');
    try {
      return await hypervisor.deleteVolume(storage.pool, volumeNameOf(vm, CLOUD_INIT_SEED));
    } catch (error) {
      if (isHypervisorError(error, 'not-found')) return false; // no such pool
      throw error;
    }
  }

  forget(uid: string): void {
    this.known.delete(uid);
  }
}

type Text = { value?: string; field: string } | { problem: string };

/** The inline value or the Secret's; problems name the Secret and key, never the value. */
async function text(
  inline: string | undefined,
  ref: SecretKeyRef | undefined,
  name: 'userData' | 'networkConfig',
  namespace: string,
  lookup: SecretLookup,
): Promise<Text> {
  if (!ref) return { ...(inline !== undefined ? { value: inline } : {}), field: `spec.cloudInit.${name}` };
  const field = `spec.cloudInit.${name}SecretRef (Secret ${ref.name}, key ${ref.key})`;
  const found = await lookup(ref.name);
  if (found.status === 'not-found')
    return { problem: `${field}: no Secret ${ref.name} in namespace ${namespace}; create it or fix the name` };
  if (found.status === 'forbidden') return { problem: `${field}: ${found.message}` };
  const encoded = found.secret.data?.[ref.key];
  if (encoded === undefined)
    return { problem: `${field}: Secret ${ref.name} has no key ${ref.key}; add it or fix the key` };
  const raw = Buffer.from(encoded, 'base64');
  const value = raw.toString('utf8');
  if (!Buffer.from(value, 'utf8').equals(raw))
    return {
      problem: `${field}: the value is not UTF-8 text; cloud-init reads text (gzip user data is not supported here)`,
    };
  return { value, field };
}
