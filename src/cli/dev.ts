// `virtfleet dev`: the local stack behind `make run`.
import { Command } from 'commander';
import { runDevStack } from '../devstack/stack.js';

export function devCommand(): Command {
  return new Command('dev')
    .description(
      'run a local stack: etcd, kube-apiserver, the CRDs, the example manifests and the controller; Ctrl-C stops it',
    )
    .option(
      '--state-dir <dir>',
      'where the control plane keeps its data, certificates and logs',
      process.env.VIRTFLEET_STATE_DIR ?? '.virtfleet',
    )
    .option('--no-examples', 'do not apply the example manifests')
    .action(async (options: { stateDir: string; examples: boolean }) => {
      const abort = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => abort.abort());
      // The controller runs as a child of the same program, however it was started.
      const self = [process.execPath, ...process.execArgv, process.argv[1] ?? '', 'controller'];
      try {
        await runDevStack(
          { stateDir: options.stateDir, controllerCommand: self, applyExamples: options.examples },
          abort.signal,
        );
      } catch (error) {
        process.stderr.write(`virtfleet dev: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
