// Fencing of failed hosts, for the HostPool controller. A failed host (Disconnected,
// HeartbeatMissed, Unreachable) with VMs placed on it and spec.hosts[].fencing.method command
// gets its command run (fencing.ts) in the background; Fenced (exit 0) lets the VM controller
// start those VMs elsewhere; Failed is retried (10 s, doubling to 5 min). The state is kept
// here per host, goes into the host's verdict (FleetHost.verdict.fencing) at each reconcile and
// into status.hosts[].fencing, so a restarted controller knows a host was fenced. It is cleared
// when the host is back.
import { rfc3339 } from '../runtime/time.js';
import type { HostAllocation } from './allocations.js';
import { fencingEnv, fencingRetryMs, runFencingCommand } from './fencing.js';
import type { FleetHost, HostFencing, HostReadiness } from '../hosts/fleet.js';
import type { HostPoolControllerOptions } from './hostpool.js';
import { FAILED_HOST_REASONS } from './pool-status.js';
import { POOL_EVENTS } from './reasons.js';
import type { PoolObject } from './resources.js';

/** How long a fencing command may run before it is killed and counted as failed. */
const FENCING_TIMEOUT_MS = 60_000;

export class HostFencer {
  private readonly fencingRuns = new Map<string, Promise<void>>();
  /** Per host (a host given a new URI is a new FleetHost, and starts afresh). */
  private readonly states = new WeakMap<FleetHost, HostFencing>();

  constructor(
    private readonly options: Pick<
      HostPoolControllerOptions,
      'events' | 'metrics' | 'logger' | 'secrets' | 'credentialsNamespace'
    >,
    private readonly now: () => number,
    /** A fencing run ended: the pool is looked at again. */
    private readonly done: (pool: string) => void,
    /**
     * A fencing run ended with this state: it goes into the host's verdict at once, so that the
     * VM controller starts the host's VMs elsewhere without waiting for the pool's next
     * reconcile (which first waits out a heartbeat deadline on the dead host).
     */
    private readonly publish: (host: FleetHost, fencing: HostFencing) => void,
  ) {}

  /** Where fencing of `host` stands: what goes into its verdict. */
  stateOf(host: FleetHost): HostFencing | undefined {
    return this.states.get(host);
  }

  /**
   * Starts the fencing command of each failed host that needs it (see the file comment), given
   * the readiness just decided for each host.
   */
  fence(
    pool: PoolObject,
    hosts: ReadonlyMap<FleetHost, HostReadiness>,
    allocations: Map<string, HostAllocation>,
  ): void {
    const poolName = pool.metadata.name ?? '';
    for (const [host, readiness] of hosts) {
      const failed = !readiness.ready && FAILED_HOST_REASONS.has(readiness.reason ?? '');
      if (!failed) {
        if (readiness.ready) this.states.delete(host);
        continue;
      }
      let fencing = this.states.get(host);
      if (!fencing) {
        // After a controller restart: what this controller wrote before.
        const before = pool.status?.hosts?.find((entry) => entry.name === host.name)?.fencing;
        if (before) {
          fencing = {
            state: before.state,
            message: before.message ?? '',
            attempts: before.attempts ?? 0,
            time: before.time,
          };
          this.states.set(host, fencing);
        }
      }
      const declared = pool.spec.hosts.find((entry) => entry.name === host.name)?.fencing;
      if (declared?.method !== 'command' || !declared.command) continue;
      if (!fencing && (allocations.get(host.name)?.vms.length ?? 0) === 0) continue; // nothing to recover
      const key = `${poolName}/${host.name}`;
      if (this.fencingRuns.has(key) || fencing?.state === 'Fenced') continue;
      if (fencing?.state === 'Failed' && (fencing.retryAt ?? 0) > this.now()) continue;
      this.fencingRuns.set(
        key,
        this.runFencing(pool, host, readiness, declared).finally(() => {
          this.fencingRuns.delete(key);
          this.done(poolName);
        }),
      );
    }
  }

  private async runFencing(
    pool: PoolObject,
    host: FleetHost,
    readiness: HostReadiness,
    declared: NonNullable<PoolObject['spec']['hosts'][number]['fencing']>,
  ): Promise<void> {
    const { events, metrics, logger, secrets, credentialsNamespace } = this.options;
    const poolName = pool.metadata.name ?? '';
    const attempts = (this.states.get(host)?.attempts ?? 0) + 1;
    const now = () => rfc3339(this.now());
    const argv = declared.command ?? [];
    this.states.set(host, {
      state: 'Fencing',
      message: `running ${argv[0]} (attempt ${attempts})`,
      attempts,
      time: now(),
    });
    if (events)
      void events.record(
        pool,
        'Warning',
        POOL_EVENTS.Fencing,
        `host ${host.name} failed (${readiness.reason}); fencing it with ${argv[0]} (attempt ${attempts})`,
      );
    let secretData: Record<string, string> | undefined;
    let problem: string | undefined;
    if (declared.secretRef) {
      const ref = declared.secretRef;
      if (ref.namespace !== credentialsNamespace)
        problem = `fencing.secretRef names Secret ${ref.namespace}/${ref.name}, but Secrets are read only in ${credentialsNamespace}`;
      else {
        secretData = secrets?.get(`${ref.namespace}/${ref.name}`)?.data;
        if (!secretData) problem = `fencing.secretRef: Secret ${ref.namespace}/${ref.name} not found`;
      }
    }
    let outcome: { ok: boolean; message: string };
    if (problem) outcome = { ok: false, message: problem };
    else {
      const {
        env,
        secrets: hidden,
        skipped,
      } = fencingEnv({ pool: poolName, host: host.name, uri: host.uri, path: process.env.PATH }, secretData);
      if (skipped.length > 0)
        logger.warn(
          { pool: poolName, host: host.name, keys: skipped },
          'fencing Secret keys that are not environment variable names are not passed',
        );
      outcome = await runFencingCommand({ argv, env, secrets: hidden, timeoutMs: FENCING_TIMEOUT_MS });
    }
    metrics?.fencingActions.inc({ pool: poolName, host: host.name, result: outcome.ok ? 'success' : 'failure' });
    if (this.states.get(host)?.attempts !== attempts) return; // the host came back meanwhile
    if (outcome.ok) {
      this.ended(host, { state: 'Fenced', message: outcome.message, attempts, time: now() });
      logger.info({ pool: poolName, host: host.name }, `host fenced: ${outcome.message}`);
      if (events)
        void events.record(
          pool,
          'Normal',
          POOL_EVENTS.Fenced,
          `host ${host.name} fenced (${outcome.message}); its VMs are started on other hosts`,
        );
    } else {
      const retryMs = fencingRetryMs(attempts);
      this.ended(host, {
        state: 'Failed',
        message: outcome.message,
        attempts,
        time: now(),
        retryAt: this.now() + retryMs,
      });
      logger.warn({ pool: poolName, host: host.name }, `fencing failed: ${outcome.message}`);
      if (events)
        void events.record(
          pool,
          'Warning',
          POOL_EVENTS.FencingFailed,
          `fencing host ${host.name} failed: ${outcome.message}; retrying in ${retryMs / 1000} s; its VMs wait`,
        );
    }
  }

  private ended(host: FleetHost, fencing: HostFencing): void {
    this.states.set(host, fencing);
    this.publish(host, fencing);
  }
}
