// `virtfleet controller`: the controller process.
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../observability/logging.js';
import { Manager } from '../runtime/manager.js';

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault(); // KUBECONFIG, ~/.kube/config, then in-cluster
  return kc;
}

export function controllerCommand(): Command {
  return new Command('controller')
    .description('run the virtfleet controller manager')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster config)')
    .option('--health-address <host:port>', 'address for /healthz and /readyz ("" to disable)', ':8081')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (options: { kubeconfig?: string; healthAddress: string; logLevel: string }) => {
      const logger = createLogger(options.logLevel);
      const abort = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          logger.info({ signal }, 'shutdown requested');
          abort.abort();
        });
      }
      const manager = new Manager({
        kubeConfig: loadKubeConfig(options.kubeconfig),
        logger,
        healthAddress: options.healthAddress,
      });
      try {
        await manager.run(abort.signal);
      } catch (error) {
        logger.fatal({ err: error }, (error as Error).message);
        process.exitCode = 1;
      }
    });
}
