#!/usr/bin/env node
// The `virtfleet` command. Each subcommand lives in its own module and is only wired in here.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command, type CommanderError } from 'commander';
import { apiCommand } from './api.js';
import { controllerCommand } from './controller.js';
import { devCommand } from './dev.js';
import { EXIT_USAGE, validateCommand } from './validate.js';
import { vmCommand } from './vm.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

// Run as kubectl's plugin (kubectl-virtfleet.ts), usage lines say `kubectl virtfleet`.
const invokedAs = basename(process.argv[1] ?? '').startsWith('kubectl-virtfleet') ? 'kubectl virtfleet' : 'virtfleet';

const program = new Command(invokedAs)
  .description('run virtual machines on KVM and Xen hosts from Kubernetes')
  .version(version);

program.addCommand(validateCommand());
program.addCommand(controllerCommand());
program.addCommand(apiCommand());
program.addCommand(devCommand());
program.addCommand(vmCommand());
{
  const { snapshotCommand, vmSnapshotCommands } = await import('./snapshot.js');
  const vm = program.commands.find((command) => command.name() === 'vm')!;
  for (const command of vmSnapshotCommands()) vm.addCommand(command);
  program.addCommand(snapshotCommand());
}
program.addCommand((await import('./ks.js')).ksCommand());
program.addCommand((await import('./image.js')).imageCommand());

// Usage errors exit with 2: commander's default (1) is what `validate` uses for "problems found".
for (const command of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
  command.exitOverride((error: CommanderError) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  });
}

await program.parseAsync();
