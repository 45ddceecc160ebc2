// The password hashes an InstallProfile's Secrets stand for, from whatever can look Secrets up:
// the controller (GET through the API server), `virtfleet ks render` (the cluster, or files).
//
// Each problem names the reference's field path (spec.rootPassword.secretKeyRef,
// spec.users[1].passwordSecretRef) and says what to do; none carries a Secret value.
import type { InstallProfileSpec } from '../api/installprofile.js';
import type { Problem } from '../api/problems.js';
import type { ResolvedPasswords } from './kickstart.js';
import { passwordHash } from './passwords.js';

/** The parts of a Secret this module reads. */
export interface SecretRecord {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  /** base64 values, as the API returns them. */
  data?: Record<string, string>;
}

export type SecretLookupResult =
  | { status: 'found'; secret: SecretRecord }
  | { status: 'not-found' }
  /** The reader may not get it; `message` says how to grant it. */
  | { status: 'forbidden'; message: string };

/** Looks one Secret of the profile's namespace up by name. Errors that are worth a retry are thrown. */
export type SecretLookup = (name: string) => Promise<SecretLookupResult>;

/** Why a reference failed, for the condition's reason. */
export type SecretProblemKind = 'not-found' | 'forbidden' | 'invalid';

export interface SecretProblem extends Problem {
  kind: SecretProblemKind;
}

export interface PasswordResolution {
  passwords: ResolvedPasswords;
  problems: SecretProblem[];
  /** Secrets that were read (namespace/name@resourceVersion), for telling what a render depended on. */
  versions: string[];
}

/**
 * Hashes of plaintext passwords by Secret uid, resourceVersion and key: SHA-512 crypt costs
 * ~20 ms, and a Secret that did not change need not be hashed again on every reconcile. Keys
 * carry no secret; values are hashes, which the rendered file carries anyway.
 */
export class HashMemo {
  private readonly entries = new Map<string, string>();
  constructor(private readonly max = 1024) {}

  get(key: string): string | undefined {
    return this.entries.get(key);
  }

  set(key: string, hash: string): void {
    this.entries.delete(key);
    this.entries.set(key, hash);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}

interface Reference {
  path: string;
  name: string;
  key: string;
  assign: (hash: string) => void;
}

/** Resolves every password reference of `spec`; each Secret is looked up once. */
export async function resolvePasswords(
  spec: InstallProfileSpec,
  namespace: string,
  lookup: SecretLookup,
  memo?: HashMemo,
): Promise<PasswordResolution> {
  // No prototype: a user may be called __proto__ (a valid Linux name).
  const passwords: ResolvedPasswords = { users: Object.create(null) as Record<string, string> };
  const references: Reference[] = [];
  const root = spec.rootPassword?.secretKeyRef;
  if (root)
    references.push({
      path: 'spec.rootPassword.secretKeyRef',
      name: root.name,
      key: root.key,
      assign: (hash) => (passwords.root = hash),
    });
  (spec.users ?? []).forEach((user, i) => {
    const ref = user.passwordSecretRef;
    if (ref)
      references.push({
        path: `spec.users[${i}].passwordSecretRef`,
        name: ref.name,
        key: ref.key,
        assign: (hash) => (passwords.users[user.name] = hash),
      });
  });

  const lookups = new Map<string, Promise<SecretLookupResult>>();
  const problems: SecretProblem[] = [];
  const versions = new Set<string>();
  for (const ref of references) {
    let pending = lookups.get(ref.name);
    if (!pending) {
      pending = lookup(ref.name);
      lookups.set(ref.name, pending);
    }
    const result = await pending;
    const secretName = `${namespace}/${ref.name}`;
    if (result.status === 'not-found') {
      problems.push({
        path: ref.path,
        kind: 'not-found',
        message: `Secret ${secretName} does not exist; create it with the key ${ref.key}`,
      });
      continue;
    }
    if (result.status === 'forbidden') {
      problems.push({
        path: ref.path,
        kind: 'forbidden',
        message: `cannot read Secret ${secretName}: ${result.message}`,
      });
      continue;
    }
    const { metadata = {}, data = {} } = result.secret;
    versions.add(`${secretName}@${metadata.resourceVersion ?? ''}`);
    const encoded = data[ref.key];
    if (encoded === undefined) {
      const keys = Object.keys(data).sort();
      problems.push({
        path: ref.path,
        kind: 'invalid',
        message: `Secret ${secretName} has no key ${ref.key} (${keys.length === 0 ? 'it has no keys' : `its keys: ${keys.join(', ')}`}); add it or correct the key`,
      });
      continue;
    }
    const memoKey =
      metadata.uid && metadata.resourceVersion
        ? `${metadata.uid}\u0000${metadata.resourceVersion}\u0000${ref.key}`
        : undefined;
    const remembered = memoKey ? memo?.get(memoKey) : undefined;
    if (remembered) {
      ref.assign(remembered);
      continue;
    }
    const outcome = passwordHash({
      label: `Secret ${secretName} key ${ref.key}`,
      key: ref.key,
      value: Buffer.from(encoded, 'base64'),
      saltSeed: saltSeed(metadata, namespace, ref.name),
    });
    if (!outcome.ok) {
      problems.push({ path: ref.path, kind: 'invalid', message: outcome.message });
      continue;
    }
    if (memoKey && outcome.hashed) memo?.set(memoKey, outcome.hash);
    ref.assign(outcome.hash);
  }
  return { passwords, problems, versions: [...versions].sort() };
}

/**
 * What the salt of a hashed plaintext is derived from: the Secret's uid and resourceVersion when
 * it came from a cluster (new with every write to the Secret), else its namespace and name.
 */
function saltSeed(metadata: NonNullable<SecretRecord['metadata']>, namespace: string, name: string): string {
  return metadata.uid
    ? `uid:${metadata.uid}\u0000${metadata.resourceVersion ?? ''}`
    : `name:${namespace}/${name}\u0000${metadata.resourceVersion ?? ''}`;
}
