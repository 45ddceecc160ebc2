// Where a VM's console is: its phase (only a VM whose domain exists has one), its host
// (status.host, read afresh on each connection, so a session opened after a live migration
// reaches the new host), that host's libvirt URI and credentials in the HostPool, as the
// controller resolves them (src/controllers/host-credentials.ts): Secrets only in the
// credentials namespace, values never in a message.
import type { HostCredentials } from '../hypervisors/libvirt/credentials.js';
import { credentialsFromSecret, SECRET, type SecretObject } from '../controllers/host-credentials.js';
import { HOST_POOL, VIRTUAL_MACHINE, type PoolObject, type VmObject } from '../controllers/resources.js';
import { isNotFound, type KubeClient } from '../runtime/kube-client.js';
import { StatusError } from './responses.js';

/** Phases in which the VM's domain exists on status.host. */
export const CONSOLE_PHASES: readonly string[] = ['Running', 'Paused', 'Migrating'];

export interface VmLocation {
  vm: VmObject;
  /** The libvirt domain's UUID (the object's uid). */
  uuid: string;
  host: string;
  uri: string;
  credentials?: HostCredentials;
}

export async function getOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export class VmLocator {
  constructor(
    private readonly client: KubeClient,
    /** The one namespace whose Secrets hold host credentials (the controller's). */
    private readonly credentialsNamespace: string,
  ) {}

  /** Throws 404 (no such VM), 409 (not running: its phase in the message) or 503 (host not usable). */
  async locate(namespace: string, name: string): Promise<VmLocation> {
    const vm = await getOrUndefined(() => this.client.get<VmObject>(VIRTUAL_MACHINE, namespace, name));
    if (!vm)
      throw new StatusError(404, 'NotFound', `virtualmachines.virtfleet.io "${name}" not found`, {
        name,
        group: 'virtfleet.io',
        kind: 'virtualmachines',
      });
    const phase = vm.status?.phase ?? 'Pending';
    const host = vm.status?.host;
    if (!CONSOLE_PHASES.includes(phase) || !host)
      throw new StatusError(
        409,
        'Conflict',
        `VM ${namespace}/${name} is not running (phase ${phase}): a console exists only while its domain runs; ` +
          `start it with \`virtfleet vm start ${name} -n ${namespace}\``,
        { name, group: 'virtfleet.io', kind: 'virtualmachines', causes: [{ reason: 'VMNotRunning', message: phase }] },
      );
    const poolName = vm.spec.hostPoolRef.name;
    const pool = await getOrUndefined(() => this.client.get<PoolObject>(HOST_POOL, undefined, poolName));
    const spec = pool?.spec.hosts.find((h) => h.name === host);
    if (!spec)
      throw new StatusError(
        503,
        'ServiceUnavailable',
        `VM ${namespace}/${name} runs on host ${host}, which HostPool ${poolName} no longer lists`,
      );
    const uuid = vm.status?.domainUUID ?? vm.metadata.uid ?? '';
    const credentials = await hostCredentials(this.client, this.credentialsNamespace, poolName, spec);
    return { vm, uuid, host, uri: spec.uri, ...(credentials ? { credentials } : {}) };
  }
}

/**
 * The credentials of a HostPool's host (undefined: it needs none), as the controller resolves
 * them; a Secret outside `credentialsNamespace`, missing, or incomplete is a 503 naming it.
 */
export async function hostCredentials(
  client: KubeClient,
  credentialsNamespace: string,
  poolName: string,
  spec: PoolObject['spec']['hosts'][number],
): Promise<HostCredentials | undefined> {
  const ref = spec.credentialsSecretRef;
  if (!ref) return undefined;
  const where = `host ${spec.name} of HostPool ${poolName}`;
  if (ref.namespace !== credentialsNamespace)
    throw new StatusError(
      503,
      'ServiceUnavailable',
      `the credentials Secret of ${where} is in namespace ${ref.namespace}, but only ${credentialsNamespace} is read`,
    );
  const secret = await getOrUndefined(() => client.get<SecretObject>(SECRET, ref.namespace, ref.name));
  if (!secret)
    throw new StatusError(503, 'ServiceUnavailable', `Secret ${ref.namespace}/${ref.name} of ${where} does not exist`);
  const resolution = credentialsFromSecret(spec.uri, ref, secret.data);
  if (!resolution.ok) throw new StatusError(503, 'ServiceUnavailable', `${where}: ${resolution.message}`);
  return resolution.credentials;
}
