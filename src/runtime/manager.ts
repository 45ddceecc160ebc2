// Runs a set of controllers against one API server: checks the server is
// reachable, serves health endpoints, starts each controller, and stops them
// all when asked. Knows nothing of what the controllers manage.
import type { Server } from 'node:http';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { Logger } from '../observability/logging.js';
import { startHealthServer } from './health-server.js';

export interface Runnable {
  readonly name: string;
  /** Runs until `signal` aborts; resolves once fully stopped. */
  run(signal: AbortSignal): Promise<void>;
}

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** HOST:PORT for /healthz and /readyz; empty to serve none. */
  healthAddress?: string;
}

export class Manager {
  private readonly runnables: Runnable[] = [];
  private ready = false;

  constructor(private readonly options: ManagerOptions) {}

  add(runnable: Runnable): this {
    this.runnables.push(runnable);
    return this;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { kubeConfig, logger } = this.options;
    const server = kubeConfig.getCurrentCluster()?.server ?? '(none)';
    const version = await kubeConfig
      .makeApiClient(VersionApi)
      .getCode()
      .catch((error: unknown) => {
        throw new Error(`cannot reach the Kubernetes API server at ${server}: ${(error as Error).message}`);
      });
    logger.info({ server, serverVersion: version.gitVersion }, 'connected to the API server');

    let health: Server | undefined;
    if (this.options.healthAddress) {
      health = await startHealthServer(this.options.healthAddress, { live: () => true, ready: () => this.ready });
      logger.info({ address: this.options.healthAddress }, 'serving /healthz and /readyz');
    }
    try {
      const running = this.runnables.map((runnable) =>
        runnable.run(signal).catch((error: unknown) => {
          logger.error({ err: error, controller: runnable.name }, 'controller stopped with an error');
          throw error;
        }),
      );
      this.ready = true;
      logger.info({ controllers: this.runnables.map((r) => r.name) }, `manager started with ${this.runnables.length} controller(s)`);
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      this.ready = false;
      logger.info('stopping');
      await Promise.allSettled(running);
    } finally {
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
    }
  }
}
