// Runs a set of controllers against one API server: checks the server is
// reachable, keeps the shared cache warm on every replica, serves health and
// metrics, and (with leader election) starts the controllers only on the
// leader. Knows nothing of what the controllers manage.
import { setMaxListeners } from 'node:events';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { type KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { Logger } from '../observability/logging.js';
import { ControllerMetrics } from '../observability/metrics.js';
import { Cache } from './cache.js';
import { closeServer, startEndpoints } from './http-endpoints.js';
import { KubeClient } from './kube-client.js';
import { LeaderElector } from './leader-election.js';
import { untilAborted } from './abort.js';

export interface Runnable {
  readonly name: string;
  /** Runs until `signal` aborts; resolves once fully stopped. */
  run(signal: AbortSignal): Promise<void>;
}

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** HOST:PORT for /healthz and /readyz; empty to serve none. */
  healthAddress?: string;
  /** HOST:PORT for /metrics; empty to serve none. */
  metricsAddress?: string;
  leaderElection?: LeaderElectionConfig;
  metrics?: ControllerMetrics;
}

export class Manager {
  readonly client: KubeClient;
  readonly cache: Cache;
  readonly metrics: ControllerMetrics;
  private readonly runnables: Runnable[] = [];
  private ready = false;
  private elector: LeaderElector | undefined;

  constructor(private readonly options: ManagerOptions) {
    this.client = new KubeClient(options.kubeConfig);
    this.cache = new Cache(this.client, options.logger);
    this.metrics = options.metrics ?? new ControllerMetrics();
  }

  add(runnable: Runnable): this {
    this.runnables.push(runnable);
    return this;
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : true;
  }

  async run(signal: AbortSignal): Promise<void> {
    // Every informer, source and worker waits on this signal for as long as it runs: many
    // listeners by design, not a leak (Node warned "MaxListenersExceededWarning" at 11).
    setMaxListeners(0, signal);
    const { kubeConfig, logger } = this.options;
    const server = kubeConfig.getCurrentCluster()?.server ?? '(none)';
    const version = await kubeConfig
      .makeApiClient(VersionApi)
      .getCode()
      .catch((error: unknown) => {
        throw new Error(`cannot reach the Kubernetes API server at ${server}: ${(error as Error).message}`);
      });
    logger.info({ server, serverVersion: version.gitVersion }, 'connected to the API server');

    const servers: Server[] = [];
    try {
      if (this.options.healthAddress) {
        servers.push(
          await startEndpoints(this.options.healthAddress, {
            '/healthz': () => ({ status: 200, body: 'ok\n' }),
            '/readyz': () => (this.ready ? { status: 200, body: 'ok\n' } : { status: 503, body: 'not ready\n' }),
          }),
        );
      }
      if (this.options.metricsAddress) {
        const registry = this.metrics.registry;
        servers.push(
          await startEndpoints(this.options.metricsAddress, {
            '/metrics': async () => ({
              status: 200,
              body: await registry.metrics(),
              contentType: registry.contentType,
            }),
          }),
        );
      }
      // The cache stops with the process, and also when leading fails: run() then rejects (a lost
      // lease), which it could not while waiting on a cache that runs until `signal`.
      const stopCache = new AbortController();
      setMaxListeners(0, stopCache.signal); // every informer waits on it
      const stopCacheOnAbort = () => stopCache.abort();
      signal.addEventListener('abort', stopCacheOnAbort, { once: true });
      const caching = this.cache.run(stopCache.signal);
      await Promise.race([this.cache.waitForSync(), untilAborted(signal)]);
      this.ready = true;
      logger.info('cache synced');
      try {
        const election = this.options.leaderElection;
        if (election) {
          const identity = election.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
          const lease = `${election.namespace}/${election.name}`;
          this.metrics.leader.set({ lease }, 0);
          this.elector = new LeaderElector(this.client, {
            ...election,
            identity,
            logger,
            onLeaderChange: (leading) => this.metrics.leader.set({ lease }, leading ? 1 : 0),
          });
          await this.elector.run(signal, (leadSignal) => this.runControllers(leadSignal));
        } else {
          // Without leader election this process leads alone: the same series, with no lease.
          this.metrics.leader.set({ lease: '' }, 1);
          try {
            await this.runControllers(signal);
          } finally {
            this.metrics.leader.set({ lease: '' }, 0);
          }
        }
      } finally {
        this.ready = false;
        signal.removeEventListener('abort', stopCacheOnAbort);
        stopCache.abort();
        await caching;
      }
    } finally {
      await Promise.all(servers.map(closeServer));
    }
  }

  private async runControllers(signal: AbortSignal): Promise<void> {
    setMaxListeners(0, signal); // the leader's signal: the same many waiters
    const { logger } = this.options;
    logger.info({ controllers: this.runnables.map((r) => r.name) }, `starting ${this.runnables.length} controller(s)`);
    const running = this.runnables.map((runnable) => runnable.run(signal));
    // Runs until stopped, with no controllers too (an empty manager still serves health and metrics).
    await untilAborted(signal);
    const results = await Promise.allSettled(running);
    for (const [index, result] of results.entries()) {
      if (result.status === 'rejected')
        logger.error(
          { err: result.reason, controller: this.runnables[index]?.name },
          'controller stopped with an error',
        );
    }
    logger.info('controllers stopped');
  }
}
