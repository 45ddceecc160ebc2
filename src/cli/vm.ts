// `virtfleet vm start|stop|restart|pause|unpause|migrate|suspend|resume|delete NAME`: operations on one VM. The power
// operations write the virtfleet.io/action annotations (why annotations: src/controllers/vm-actions.ts)
// and follow status.lastAction until the controller reports the outcome, printing each change
// of phase and Ready on the way.
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import {
  ACTION_ANNOTATION,
  ACTION_ID_ANNOTATION,
  MIGRATE_TO_ANNOTATION,
  VM_ACTIONS,
  type VmAction,
} from '../controllers/vm-actions.js';
import { VIRTUAL_MACHINE, VM_FINALIZER, type VmObject } from '../controllers/resources.js';
import { findCondition, type Condition } from '../runtime/conditions.js';
import {
  checkNamespace,
  checkObjectName,
  InvalidNameError,
  isNotFound,
  KubeClient,
  namespaceProblem,
} from '../runtime/kube-client.js';
import { consoleCommand } from './console.js';
import { vncCommand } from './vnc.js';
import { KubeConfigError, loadKubeConfig } from './controller.js';

const POLL_MS = 500;

interface VmFlags {
  namespace?: string;
  kubeconfig?: string;
  wait: boolean;
  timeout: string;
}

const DESCRIPTIONS: Record<VmAction, string> = {
  start: 'start a stopped VM (or resume a paused one); lifts an earlier stop',
  stop: 'shut the VM down (destroyed after the grace period); it stays stopped, whatever its runStrategy, until `vm start`',
  restart: 'shut the VM down and start it again (a cold restart: it boots its current definition)',
  pause: 'pause the running VM; it stays paused until `vm unpause`',
  unpause: 'resume a paused VM',
  migrate:
    'live-migrate the running VM to another host of its pool (--to HOST, or the scheduler chooses); it keeps running throughout',
  suspend:
    "save the VM's memory to its host's disk and stop its QEMU process (libvirt managed save); it stays suspended, keeping its place on the host, until `vm resume`",
  resume: 'start a suspended VM from where it was saved (or a stopped one afresh); lifts an earlier suspend or stop',
};

export class CliError extends Error {}

/** A bad argument or flag: nothing was asked of the cluster; exit status 2. */
export class UsageError extends CliError {}

/** What a command works on, checked in full before any request. */
interface Target {
  client: KubeClient;
  namespace: string;
  timeoutMs: number;
}

/**
 * Checks every argument and flag before anything is done: a bad `--timeout` must not be found
 * only after the VM was stopped, and a name such as `.` must never reach a URL.
 */
function checkedTarget(name: string, flags: VmFlags & { to?: string }): Target {
  usage(() => checkObjectName(name), 'NAME');
  if (flags.namespace !== undefined) usage(() => checkNamespace(flags.namespace!), '--namespace');
  const toProblem = flags.to === undefined ? undefined : namespaceProblem(flags.to); // host names are DNS labels too
  if (toProblem) throw new UsageError(`--to: ${JSON.stringify(flags.to)} is not a host name: ${toProblem}`);
  const ms = timeoutMs(flags.timeout);
  let config: ReturnType<typeof loadKubeConfig>;
  try {
    config = loadKubeConfig(flags.kubeconfig);
  } catch (error) {
    throw error instanceof KubeConfigError ? new UsageError(error.message) : error;
  }
  const namespace = flags.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
  usage(() => checkNamespace(namespace), "the kubeconfig context's namespace");
  return { client: new KubeClient(config, 'virtfleet-cli'), namespace, timeoutMs: ms };
}

/** Runs a name check; its failure is a usage error (exit 2) naming `what`. */
export function usage(check: () => void, what: string): void {
  try {
    check();
  } catch (error) {
    if (error instanceof InvalidNameError) throw new UsageError(`${what}: ${error.message}`);
    throw error;
  }
}

/** --timeout's value: seconds, with or without a trailing s. */
export function timeoutMs(value: string): number {
  const seconds = /^\d+(\.\d+)?s?$/.test(value) ? Number(value.replace(/s$/, '')) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new UsageError(`--timeout: "${value}" is not a positive number of seconds`);
  return seconds * 1000;
}

async function getVm(client: KubeClient, namespace: string, name: string): Promise<VmObject | undefined> {
  try {
    return await client.get<VmObject>(VIRTUAL_MACHINE, namespace, name);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** One line per change of what a user watches: phase and the Ready condition. */
function progressLine(vm: VmObject): string {
  const ready = findCondition((vm.status?.conditions ?? []) as Condition[], 'Ready');
  const phase = vm.status?.phase ?? 'Pending';
  return ready ? `${phase}: Ready=${ready.status} ${ready.reason}: ${ready.message}` : phase;
}

function printer(out: (line: string) => void, label: string): (vm: VmObject) => void {
  let last = '';
  return (vm) => {
    const line = progressLine(vm);
    if (line !== last) out(`${label} ${line}`);
    last = line;
  };
}

export async function runAction(
  action: VmAction,
  name: string,
  flags: VmFlags & { to?: string },
  out: (line: string) => void,
): Promise<void> {
  const { client, namespace, timeoutMs: waitMs } = checkedTarget(name, flags);
  const label = `vm/${name}:`;
  if (!(await getVm(client, namespace, name)))
    throw new CliError(`virtualmachine ${name} not found in namespace ${namespace}`);
  const id = `${new Date().toISOString()}-${randomBytes(3).toString('hex')}`;
  // migrate-to is set or cleared with every request, so an old target never applies to a new one.
  const target = action === 'migrate' ? { [MIGRATE_TO_ANNOTATION]: flags.to ?? null } : {};
  await client.patch(VIRTUAL_MACHINE, namespace, name, {
    metadata: { annotations: { [ACTION_ANNOTATION]: action, [ACTION_ID_ANNOTATION]: id, ...target } },
  });
  out(`${label} asked to ${action} (${ACTION_ID_ANNOTATION}=${id})`);
  if (!flags.wait) return;
  const deadline = Date.now() + waitMs;
  const show = printer(out, label);
  for (;;) {
    const vm = await getVm(client, namespace, name);
    if (!vm) throw new CliError(`virtualmachine ${name} was deleted before the ${action} finished`);
    show(vm);
    const last = vm.status?.lastAction;
    if (last?.id === id && last.action === action) {
      if (last.state === 'Succeeded') {
        out(`${label} ${action} done: ${last.message ?? ''}`);
        return;
      }
      if (last.state === 'Refused') throw new CliError(`${action} refused: ${last.message ?? ''}`);
      if (last.state === 'Failed') throw new CliError(`${action} failed: ${last.message ?? ''}`);
    }
    if (Date.now() > deadline) {
      const state =
        last?.id === id
          ? `${last.state}: ${last.message ?? ''}`
          : 'not taken up by the controller yet (is it running?)';
      throw new CliError(`${action} not finished after ${flags.timeout} s: ${state}`);
    }
    await delay(POLL_MS);
  }
}

interface DeleteFlags extends VmFlags {
  force: boolean;
}

export async function runDelete(name: string, flags: DeleteFlags, out: (line: string) => void): Promise<void> {
  const { client, namespace, timeoutMs: waitMs } = checkedTarget(name, flags);
  const label = `vm/${name}:`;
  const vm = await getVm(client, namespace, name);
  if (!vm) throw new CliError(`virtualmachine ${name} not found in namespace ${namespace}`);
  if (!vm.metadata.deletionTimestamp) await client.delete(VIRTUAL_MACHINE, namespace, name);
  out(
    `${label} deleting (shut down, then the domain and its volumes are removed from ${vm.status?.host ?? 'its host'})`,
  );
  if (!flags.wait && !flags.force) return;
  const deadline = Date.now() + waitMs;
  const show = printer(out, label);
  for (;;) {
    const current = await getVm(client, namespace, name);
    if (!current) {
      out(`${label} deleted`);
      return;
    }
    show(current);
    if (Date.now() > deadline) break;
    await delay(POLL_MS);
  }
  const current = await getVm(client, namespace, name);
  if (!current) return out(`${label} deleted`);
  if (!flags.force) {
    throw new CliError(
      `still deleting after ${flags.timeout} s (${progressLine(current)}); the controller keeps trying. ` +
        `If the host is gone for good, \`virtfleet vm delete ${name} --force\` removes the object without it (read the risk in its help first)`,
    );
  }
  const host = current.status?.host ?? 'its host';
  const domain = current.status?.domainName ?? 'its domain';
  out(
    `${label} WARNING: removing the ${VM_FINALIZER} finalizer without the controller. The domain ${domain} on ${host} ` +
      `(HostPool ${current.spec.hostPoolRef.name}) and its volumes may still exist and may still RUN. When the host answers, ` +
      'the HostPool reports it (condition OrphanDomains); it is never destroyed automatically. Remove it by hand with ' +
      `virsh destroy/undefine once you are sure, or recreate the VM object only after that.`,
  );
  const finalizers = (current.metadata.finalizers ?? []).filter((f) => f !== VM_FINALIZER);
  // The resourceVersion guards against a finalizer list changed meanwhile.
  await client.patch(VIRTUAL_MACHINE, namespace, name, {
    metadata: { finalizers, resourceVersion: current.metadata.resourceVersion },
  });
  out(`${label} finalizer removed; the object is gone`);
}

function common(command: Command, timeout: string): Command {
  return command
    .option('-n, --namespace <namespace>', "namespace of the VM (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--no-wait', 'return once asked, without following the outcome')
    .addOption(new Option('--timeout <seconds>', 'how long to follow the outcome').default(timeout));
}

function handle(run: () => Promise<void>): Promise<void> {
  return run().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  });
}

export function vmCommand(): Command {
  const vm = new Command('vm').description('operations on one VirtualMachine');
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const action of VM_ACTIONS) {
    const command = common(
      new Command(action).argument('<name>', 'the VirtualMachine').description(DESCRIPTIONS[action]),
      action === 'migrate' ? '900' : '300',
    );
    if (action === 'migrate') command.option('--to <host>', "the destination host (a name in the VM's HostPool)");
    vm.addCommand(
      command.action((name: string, flags: VmFlags & { to?: string }) =>
        handle(() => runAction(action, name, flags, out)),
      ),
    );
  }
  vm.addCommand(
    common(
      new Command('delete')
        .argument('<name>', 'the VirtualMachine')
        .description(
          'delete the VM: graceful shutdown, destroy after the grace period, undefine, delete its volumes (not those with retain), then the object. ' +
            '--force: if that has not finished within --timeout (e.g. the host is unreachable for good), remove the finalizer anyway. ' +
            'RISK: the domain may then still exist and run on its host, unseen by virtfleet except as an orphan on the HostPool; ' +
            'creating a VM of the same name meanwhile may run a second copy of the workload.',
        ),
      '120',
    )
      .option(
        '--force',
        'remove the finalizer after --timeout even though the domain could not be removed (see RISK above)',
        false,
      )
      .action((name: string, flags: DeleteFlags) => handle(() => runDelete(name, flags, out))),
  );
  vm.addCommand(consoleCommand());
  vm.addCommand(vncCommand());
  return vm;
}
