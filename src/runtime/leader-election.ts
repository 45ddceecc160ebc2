// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules:
// the leader renews every retry period and gives up if it cannot renew within
// the renew deadline; a candidate takes the lease only once it has seen the
// record unchanged for a whole lease duration (by its own clock, so clock
// skew between machines does not matter). A candidate watches the Lease, so
// a released lease is taken at once rather than at the next poll; on stop
// the leader releases the lease.
import type { Logger } from '../observability/logging.js';
import { abortableDelay } from './abort.js';
import { Informer } from './informer.js';
import { isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

export const LEASE: ResourceType = {
  kind: 'Lease',
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  namespaced: true,
};

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger: Logger;
  onLeaderChange?: (leading: boolean) => void;
}

/** RFC 3339 with microseconds, the MicroTime format the Lease fields use. */
function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
  ) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until leading, then calls `lead` with a signal that aborts when
   * leadership is lost. Resolves after `signal` aborts (releasing the lease if
   * held); rejects if leadership is lost while running.
   */
  async run(signal: AbortSignal, lead: (leadSignal: AbortSignal) => Promise<void>): Promise<void> {
    const logger = this.options.logger.child({
      lease: `${this.options.namespace}/${this.options.name}`,
      identity: this.options.identity,
    });
    const watcher = new Informer<Lease>(this.client, LEASE, {
      namespace: this.options.namespace,
      fieldSelector: `metadata.name=${this.options.name}`,
      logger,
    });
    const stopWatch = new AbortController();
    const watching = watcher.run(stopWatch.signal);
    let wake: (() => void) | undefined;
    const off = watcher.on(() => wake?.());
    try {
      while (!signal.aborted && !(await this.tryAcquireOrRenew(logger))) {
        // Wait for a change of the Lease, the moment it would expire, or stop.
        const expiresIn = Math.max(this.observedAt + this.leaseDurationMs - Date.now(), 0) + 50;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(expiresIn, this.leaseDurationMs));
          function done() {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          }
          wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      off();
      stopWatch.abort();
      await watching;
    }
    if (signal.aborted) return;

    this.setLeading(true, logger);
    const leadAbort = new AbortController();
    const onStop = () => leadAbort.abort();
    signal.addEventListener('abort', onStop, { once: true });
    const leadingWork = lead(leadAbort.signal);
    let lost: Error | undefined;
    try {
      lost = await this.renewUntil(signal, logger);
    } finally {
      leadAbort.abort();
      signal.removeEventListener('abort', onStop);
      await leadingWork;
      this.setLeading(false, logger);
    }
    if (lost) throw lost;
    await this.release(logger);
  }

  private setLeading(leading: boolean, logger: Logger): void {
    this.leading = leading;
    logger.info(leading ? 'became the leader' : 'no longer the leader');
    this.options.onLeaderChange?.(leading);
  }

  /** Renews every retry period until stopped; returns an error when a renewal deadline is missed. */
  private async renewUntil(signal: AbortSignal, logger: Logger): Promise<Error | undefined> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await abortableDelay(this.retryPeriodMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew(logger)) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        return new Error(
          `leader election lost: could not renew lease ${this.options.namespace}/${this.options.name} within ${this.renewDeadlineMs} ms`,
        );
      }
    }
    return undefined;
  }

  private async tryAcquireOrRenew(logger: Logger): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(LEASE, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) {
        logger.warn({ err: error }, 'cannot read the leader lease');
        return false;
      }
      try {
        await this.client.create<Lease>(LEASE, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        });
        this.observe(`${identity}|${spec.renewTime}`);
        return true;
      } catch (createError) {
        if (!isConflict(createError)) logger.warn({ err: createError }, 'cannot create the leader lease');
        return false;
      }
    }

    const holder = lease.spec?.holderIdentity ?? '';
    const record = `${holder}|${lease.spec?.renewTime ?? ''}`;
    if (record !== this.observedRecord) this.observe(record);
    const held = holder !== '' && holder !== identity;
    if (held && Date.now() < this.observedAt + this.leaseDurationMs) return false;

    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    const acquireTime = holder === identity ? lease.spec?.acquireTime : microTime(now);
    try {
      const updated = await this.client.replace<Lease>(LEASE, {
        ...lease,
        spec: { ...lease.spec, ...spec, acquireTime, leaseTransitions: transitions },
      });
      this.observe(`${identity}|${updated.spec?.renewTime ?? ''}`);
      return true;
    } catch (error) {
      if (!isConflict(error)) logger.warn({ err: error }, 'cannot update the leader lease');
      return false;
    }
  }

  private observe(record: string): void {
    this.observedRecord = record;
    this.observedAt = Date.now();
  }

  /** Gives the lease up at once, so a standby takes over without waiting for it to expire. */
  private async release(logger: Logger): Promise<void> {
    try {
      const lease = await this.client.get<Lease>(LEASE, this.options.namespace, this.options.name);
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.client.replace<Lease>(LEASE, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
      });
      logger.info('released the leader lease');
    } catch (error) {
      logger.warn({ err: error }, 'could not release the leader lease; the standby takes over when it expires');
    }
  }
}
