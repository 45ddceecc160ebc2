// Host credentials from Secrets (spec.hosts[].credentialsSecretRef), read through the cache. The
// controller may read Secrets only in its own namespace (deploy/base/rbac.yaml), so a reference
// to another namespace is a condition on the host, never a read.
//
// Secret keys (the standard ones of kubernetes.io/ssh-auth, kubernetes.io/tls and
// kubernetes.io/basic-auth Secrets):
//   +ssh  ssh-privatekey, known_hosts
//   +tls  tls.crt, tls.key, ca.crt
//   any   username, password (SASL, or libvirt's test driver <auth>)
// Values never leave this module except into the connection pool: no log line, status or
// Event carries one; messages name keys only.
import type { HostCredentials } from '../hypervisors/hypervisor.js';
import { transportOf } from '../hypervisors/libvirt/credentials.js';
import type { CredentialsResolution, SecretRef } from '../hosts/fleet-host.js';
import type { Informer } from '../runtime/informer.js';
import type { KubeObject, ResourceType } from '../runtime/kube-client.js';
import { HOST_REASONS } from './reasons.js';

export const SECRET: ResourceType = { kind: 'Secret', group: '', version: 'v1', plural: 'secrets', namespaced: true };

export type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

// The Fleet's types (src/hosts): it passes the credentials on, and keeps the reference per host.
export type { CredentialsResolution, SecretRef } from '../hosts/fleet-host.js';

export const SSH_KEYS = ['ssh-privatekey', 'known_hosts'] as const;
export const TLS_KEYS = ['tls.crt', 'tls.key', 'ca.crt'] as const;

/** The credentials for `uri` in the Secret's data (base64, as the API returns it). */
export function credentialsFromSecret(
  uri: string,
  ref: SecretRef,
  data: Record<string, string> | undefined,
): CredentialsResolution {
  const value = (key: string): Buffer | undefined =>
    data?.[key] === undefined ? undefined : Buffer.from(data[key]!, 'base64');
  const text = (key: string) => value(key)?.toString('utf8');
  const secret = `Secret ${ref.namespace}/${ref.name}`;
  const missing = (keys: readonly string[]) => keys.filter((key) => value(key) === undefined);
  const credentials: HostCredentials = {};
  const username = text('username');
  const password = text('password');
  if (username !== undefined) credentials.username = username;
  if (password !== undefined) credentials.password = password;
  const transport = transportOf(uri);
  if (transport === 'ssh') {
    const absent = missing(SSH_KEYS);
    if (absent.length > 0)
      return invalid(
        `${secret} lacks ${absent.join(', ')} (an +ssh URI needs ${SSH_KEYS.join(' and ')}; host-key checking stays on)`,
      );
    credentials.ssh = { privateKey: value('ssh-privatekey')!, knownHosts: value('known_hosts')! };
  } else if (transport === 'tls') {
    const absent = missing(TLS_KEYS);
    if (absent.length > 0)
      return invalid(`${secret} lacks ${absent.join(', ')} (a +tls URI needs ${TLS_KEYS.join(', ')})`);
    credentials.tls = { cert: value('tls.crt')!, key: value('tls.key')!, ca: value('ca.crt')! };
  } else if (username === undefined && password === undefined) {
    return invalid(
      `${secret} has neither username nor password, the only credentials a ${uri.split(':')[0]} URI can use`,
    );
  }
  return { ok: true, credentials };
}

function invalid(message: string): CredentialsResolution {
  return { ok: false, reason: HOST_REASONS.CredentialsInvalid, message };
}

/** The credentials of a host whose spec names `ref`, from the cached Secrets of `namespace`. */
export function resolveCredentials(
  uri: string,
  ref: SecretRef,
  namespace: string,
  secrets: Informer<SecretObject> | undefined,
): CredentialsResolution {
  if (ref.namespace !== namespace) {
    return {
      ok: false,
      reason: HOST_REASONS.CredentialsNamespaceNotAllowed,
      message:
        `credentialsSecretRef names Secret ${ref.namespace}/${ref.name}, but host credential Secrets must be in the controller's ` +
        `namespace ${namespace} (the only one it may read Secrets in); move the Secret there and point credentialsSecretRef at it`,
    };
  }
  if (!secrets)
    return {
      ok: false,
      reason: HOST_REASONS.CredentialsNotFound,
      message: `this controller reads no Secrets; Secret ${ref.namespace}/${ref.name} cannot be used`,
    };
  const secret = secrets.get(`${ref.namespace}/${ref.name}`);
  if (!secret)
    return {
      ok: false,
      reason: HOST_REASONS.CredentialsNotFound,
      message: `Secret ${ref.namespace}/${ref.name} (credentialsSecretRef) does not exist`,
    };
  return credentialsFromSecret(uri, ref, secret.data);
}
