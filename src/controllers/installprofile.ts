// The InstallProfile controller (key: namespace/name): whether a profile renders to a Kickstart
// file, and the sha256 of that file.
//
//   get (gone → forget it) → read the Secrets it names → render (src/provisioning) → status:
//   Valid (True, or False with one `field: message` per problem), renderedHash,
//   observedGeneration; written only when it changed → an Event when Valid or the hash changed
//   → come back later to read the Secrets again.
//
// Secrets are read with GET, not watched: in a user's namespace the controller is granted `get`
// on Secrets only (ClusterRole virtfleet-secret-reader, bound per namespace by its owner; see
// deploy/base/rbac.yaml), so it neither can nor should cache every Secret of every namespace.
// A change to a Secret is therefore seen at the next resync (resyncMs), a missing or unreadable
// one is looked for again sooner (secretRetryMs). Secret values live only in the reconcile
// that read them: status, Events and logs name Secrets and keys, never a value; the rendered
// file (and so its sha256 in status) carries crypt hashes, never a plaintext.
import type { InstallProfile, InstallProfileStatus } from '../api/installprofile.js';
import type { Logger } from '../observability/logging.js';
import type { ControllerMetrics } from '../observability/metrics.js';
import { formatProblems, renderProfile, type ProfileProblem, type ProfileRender } from '../provisioning/profile.js';
import { HashMemo, type SecretLookup, type SecretRecord } from '../provisioning/profile-secrets.js';
import { untilAborted } from '../runtime/abort.js';
import { findCondition, setCondition, type ConditionInput } from '../runtime/conditions.js';
import { Controller } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import { ApiError, isNotFound, type KubeClient, type KubeObject, type ResourceType } from '../runtime/kube-client.js';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../runtime/reconciler.js';
import { watchOwn, type Source } from '../runtime/sources.js';
import { patchStatusIfChanged } from '../runtime/status.js';
import { GROUP, VERSION } from '../api/common.js';
import { SECRET } from './host-credentials.js';
import { profileKstatus, withKstatusConditions } from './kstatus.js';
import { INSTALL_PROFILE_CONDITIONS, INSTALL_PROFILE_EVENTS, INSTALL_PROFILE_REASONS } from './reasons.js';

export const INSTALL_PROFILE: ResourceType = {
  kind: 'InstallProfile',
  group: GROUP,
  version: VERSION,
  plural: 'installprofiles',
  namespaced: true,
};

export type ProfileObject = InstallProfile & KubeObject;

export const DEFAULT_PROFILE_RESYNC_MS = 5 * 60_000;
export const DEFAULT_SECRET_RETRY_MS = 30_000;
/** Longest Valid message; the rest of the problems are counted. */
const MAX_MESSAGE = 4096;

export interface InstallProfileControllerOptions {
  client: KubeClient;
  profiles: Informer<ProfileObject>;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Events on profiles (rendered, invalid); without it, none are recorded. */
  events?: EventRecorder;
  /** How often a valid profile's Secrets are read again (they are not watched). Default 5 min. */
  resyncMs?: number;
  /** How soon a profile whose Secret is missing, unreadable or unusable looks again. Default 30 s. */
  secretRetryMs?: number;
  concurrency?: number;
}

export class InstallProfileReconciler implements Reconciler {
  /** Hashes of plaintext passwords by Secret uid/resourceVersion/key: hashed once per Secret version. */
  private readonly memo = new HashMemo();
  /** Per profile uid, what the last Event said (Valid, reason, hash or message): Events on change only. */
  private readonly reported = new Map<string, string>();

  constructor(private readonly options: InstallProfileControllerOptions) {}

  async reconcile({ key, logger }: ReconcileContext): Promise<ReconcileResult | void> {
    const profile = this.options.profiles.get(key);
    // Nothing to clean up: the profile owns nothing outside its status (no finalizer).
    if (!profile || profile.metadata.deletionTimestamp) return;
    const namespace = profile.metadata.namespace ?? '';
    const name = profile.metadata.name ?? '';
    const result = await renderProfile(
      { namespace, name, spec: profile.spec },
      secretLookup(this.options.client, namespace),
      this.memo,
    );
    const status = profileStatus(profile.status, profile.metadata.generation, result);
    const uid = profile.metadata.uid ?? key;
    if (!this.reported.has(uid)) this.reported.set(uid, signature(profile.status));
    await patchStatusIfChanged(
      this.options.client,
      INSTALL_PROFILE,
      profile as ProfileObject & { status?: Record<string, unknown> },
      status as Record<string, unknown>,
    );
    const changed = this.recordChange(profile, uid, status, result);
    if (result.ok) {
      logger[changed ? 'info' : 'debug']({ renderedHash: result.hash, secrets: result.secrets }, 'profile rendered');
      return { requeueAfterMs: this.options.resyncMs ?? DEFAULT_PROFILE_RESYNC_MS };
    }
    const reason = findCondition(status.conditions, INSTALL_PROFILE_CONDITIONS.Valid)?.reason;
    logger[changed ? 'info' : 'debug']({ reason, problems: result.problems.length }, 'profile invalid');
    // A spec problem waits for the next change of the spec (a watch event); Secrets are not watched.
    if (result.problems.some((problem) => problem.kind !== 'spec'))
      return { requeueAfterMs: this.options.secretRetryMs ?? DEFAULT_SECRET_RETRY_MS };
  }

  /**
   * Normal Rendered when the profile became valid or its file changed; Warning Invalid when it
   * became invalid or its problems changed. Returns whether it changed.
   */
  private recordChange(
    profile: ProfileObject,
    uid: string,
    status: InstallProfileStatus,
    result: ProfileRender,
  ): boolean {
    const next = signature(status);
    if (this.reported.get(uid) === next) return false;
    this.reported.set(uid, next);
    const events = this.options.events;
    if (!events) return true;
    if (result.ok) {
      const lines = result.text.split('\n').length - 1;
      void events.record(
        profile,
        'Normal',
        INSTALL_PROFILE_EVENTS.Rendered,
        `renders to a Kickstart file of ${lines} lines, ${result.hash}`,
      );
    } else {
      const valid = findCondition(status.conditions, INSTALL_PROFILE_CONDITIONS.Valid);
      void events.record(profile, 'Warning', INSTALL_PROFILE_EVENTS.Invalid, valid?.message ?? 'invalid');
    }
    return true;
  }

  /** Drops what is remembered of profiles no longer in the cache. */
  prune(): void {
    const live = new Set(this.options.profiles.list().map((profile) => profile.metadata.uid ?? ''));
    for (const uid of this.reported.keys()) if (!live.has(uid)) this.reported.delete(uid);
  }
}

/** What an Event would say about a status: Valid's status and reason, and the hash or the message. */
function signature(status: InstallProfileStatus | undefined): string {
  const valid = findCondition(status?.conditions, INSTALL_PROFILE_CONDITIONS.Valid);
  if (!valid) return '';
  return [valid.status, valid.reason, valid.status === 'True' ? (status?.renderedHash ?? '') : valid.message].join(
    '\u0000',
  );
}

/**
 * The status a render result stands for: Valid, Ready (the same verdict, for kstatus), and
 * Reconciling or Stalled when it is not valid (kstatus.ts); other conditions are kept.
 */
export function profileStatus(
  previous: InstallProfileStatus | undefined,
  generation: number | undefined,
  result: ProfileRender,
  now: Date = new Date(),
): InstallProfileStatus {
  const valid = validCondition(result);
  let conditions = setCondition(previous?.conditions, valid, generation, now);
  conditions = setCondition(conditions, { ...valid, type: INSTALL_PROFILE_CONDITIONS.Ready }, generation, now);
  conditions = withKstatusConditions(conditions, profileKstatus(valid), generation, now);
  const status: InstallProfileStatus = { conditions };
  if (result.ok) status.renderedHash = result.hash;
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}

function validCondition(result: ProfileRender): ConditionInput {
  const type = INSTALL_PROFILE_CONDITIONS.Valid;
  if (result.ok) {
    const lines = result.text.split('\n').length - 1;
    return {
      type,
      status: 'True',
      reason: INSTALL_PROFILE_REASONS.Rendered,
      message: `the profile and its Secrets render to a Kickstart file of ${lines} lines`,
    };
  }
  return { type, status: 'False', reason: invalidReason(result.problems), message: problemsMessage(result.problems) };
}

/** The reason of the first kind present, in the order a user would fix them. */
function invalidReason(problems: readonly ProfileProblem[]): string {
  const kinds = new Set(problems.map((problem) => problem.kind));
  if (kinds.has('spec')) return INSTALL_PROFILE_REASONS.InvalidSpec;
  if (kinds.has('not-found')) return INSTALL_PROFILE_REASONS.SecretNotFound;
  if (kinds.has('forbidden')) return INSTALL_PROFILE_REASONS.SecretForbidden;
  return INSTALL_PROFILE_REASONS.InvalidSecret;
}

/** `path: message; path: message`, cut at MAX_MESSAGE with a count of the rest. */
export function problemsMessage(problems: readonly ProfileProblem[]): string {
  const lines = formatProblems(problems);
  let message = '';
  for (const [index, line] of lines.entries()) {
    const next = message === '' ? line : `${message}; ${line}`;
    if (next.length > MAX_MESSAGE)
      return `${message}; and ${lines.length - index} more problem${lines.length - index === 1 ? '' : 's'}`;
    message = next;
  }
  return message;
}

/**
 * Secrets of `namespace` by GET. Not found and forbidden are answers (the profile is invalid
 * until they change); any other failure is thrown, and the reconcile retried with backoff.
 * `forbidden` says how to grant the reader access (default: the controller's RoleBinding).
 */
export function secretLookup(
  client: KubeClient,
  namespace: string,
  forbidden: (namespace: string) => string = controllerForbidden,
): SecretLookup {
  return async (name) => {
    try {
      return { status: 'found', secret: await client.get<SecretRecord & KubeObject>(SECRET, namespace, name) };
    } catch (error) {
      if (isNotFound(error)) return { status: 'not-found' };
      if (error instanceof ApiError && error.status === 403)
        return { status: 'forbidden', message: forbidden(namespace) };
      throw error;
    }
  };
}

function controllerForbidden(namespace: string): string {
  return (
    `the controller may not read Secrets in namespace ${namespace}. Grant it there: kubectl create rolebinding virtfleet-secrets -n ${namespace} ` +
    '--clusterrole=virtfleet-secret-reader --serviceaccount=virtfleet-system:virtfleet-controller'
  );
}

export function installProfileController(options: InstallProfileControllerOptions): Controller {
  const reconciler = new InstallProfileReconciler(options);
  // What the reconciler remembers per profile (by uid) goes with the profile.
  const pruneOnDelete: Source = async (_controller, signal) => {
    const off = options.profiles.on((event) => {
      if (event.type === 'delete') reconciler.prune();
    });
    await untilAborted(signal);
    off();
  };
  return new Controller({
    name: 'installprofile',
    reconciler,
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    concurrency: options.concurrency ?? 2,
    sources: [watchOwn(options.profiles), pruneOnDelete],
  });
}
