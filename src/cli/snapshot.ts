// `virtfleet vm snapshot NAME`, `virtfleet vm restore NAME --snapshot S` and `virtfleet snapshot
// list`: they create VirtualMachineSnapshot and VirtualMachineRestore objects (the controller does
// the work, docs/snapshots.md) and follow their status, printing a line at each change. Every
// argument and flag is checked before anything is asked of the cluster.
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { VIRTUAL_MACHINE, type VmObject } from '../controllers/resources.js';
import { VM_RESTORE, VM_SNAPSHOT, type RestoreObject, type SnapshotObject } from '../controllers/snapshot/types.js';
import { findCondition, type Condition } from '../runtime/conditions.js';
import { checkNamespace, checkObjectName, isNotFound, KubeClient } from '../runtime/kube-client.js';
import { KubeConfigError, loadKubeConfig } from './controller.js';
import { CliError, timeoutMs, usage, UsageError } from './vm.js';

const POLL_MS = 500;

interface CommonFlags {
  namespace?: string;
  kubeconfig?: string;
}

interface WaitFlags extends CommonFlags {
  wait: boolean;
  timeout: string;
}

export interface SnapshotFlags extends WaitFlags {
  memory: boolean;
  name?: string;
}

export interface RestoreFlags extends WaitFlags {
  snapshot?: string;
  all: boolean;
}

interface Target {
  client: KubeClient;
  namespace: string;
}

function target(flags: CommonFlags): Target {
  if (flags.namespace !== undefined) usage(() => checkNamespace(flags.namespace!), '--namespace');
  let config: ReturnType<typeof loadKubeConfig>;
  try {
    config = loadKubeConfig(flags.kubeconfig);
  } catch (error) {
    throw error instanceof KubeConfigError ? new UsageError(error.message) : error;
  }
  const namespace = flags.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
  usage(() => checkNamespace(namespace), "the kubeconfig context's namespace");
  return { client: new KubeClient(config, 'virtfleet-cli'), namespace };
}

async function getOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** A snapshot name from the VM's and the time: `web-20261207-171800`. */
export function defaultSnapshotName(vm: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${vm.slice(0, 200).replace(/[.-]+$/, '')}-${stamp.toLowerCase()}`;
}

interface Followed {
  metadata: { name?: string };
  status?: { phase?: string; conditions?: unknown };
}

/** One line per change of phase or Ready. */
function progressLine(object: Followed): string {
  const ready = findCondition((object.status?.conditions ?? []) as Condition[], 'Ready');
  const phase = object.status?.phase ?? 'Pending';
  return ready ? `${phase}: ${ready.reason}: ${ready.message}` : `${phase}: waiting for the controller`;
}

/** Follows the object until its phase is one of `done` (returned) or Failed (thrown). */
async function follow<T extends Followed>(
  read: () => Promise<T | undefined>,
  label: string,
  done: string,
  flags: WaitFlags,
  out: (line: string) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs(flags.timeout);
  let last = '';
  for (;;) {
    const object = await read();
    if (!object) throw new CliError(`${label} was deleted while waiting`);
    const line = progressLine(object);
    if (line !== last) out(`${label} ${line}`);
    last = line;
    if (object.status?.phase === done) return object;
    if (object.status?.phase === 'Failed') throw new CliError(`${label} failed: ${line}`);
    if (Date.now() > deadline) throw new CliError(`${label} not finished after ${flags.timeout} s: ${line}`);
    await delay(POLL_MS);
  }
}

export async function runSnapshot(vm: string, flags: SnapshotFlags, out: (line: string) => void): Promise<string> {
  usage(() => checkObjectName(vm), 'NAME');
  const name = flags.name ?? defaultSnapshotName(vm, new Date());
  usage(() => checkObjectName(name), '--name');
  if (flags.wait) timeoutMs(flags.timeout);
  const { client, namespace } = target(flags);
  if (!(await getOrUndefined(() => client.get<VmObject>(VIRTUAL_MACHINE, namespace, vm))))
    throw new CliError(`virtualmachine ${vm} not found in namespace ${namespace}`);
  await client.create<SnapshotObject>(VM_SNAPSHOT, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineSnapshot',
    metadata: { name, namespace },
    spec: { source: { vmName: vm }, memory: flags.memory },
  });
  const label = `vmsnap/${name}:`;
  out(`${label} asked to capture vm/${vm} ${flags.memory ? 'with its memory' : 'disks only'}`);
  if (!flags.wait) return name;
  const done = await follow(
    () => getOrUndefined(() => client.get<SnapshotObject>(VM_SNAPSHOT, namespace, name)),
    label,
    'Ready',
    flags,
    out,
  );
  const entry = done.status?.vms?.[0];
  out(`${label} ready: ${entry ? `${entry.consistency ?? ''} on host ${entry.host}` : ''}`);
  return name;
}

export async function runRestore(vm: string, flags: RestoreFlags, out: (line: string) => void): Promise<string> {
  usage(() => checkObjectName(vm), 'NAME');
  if (flags.snapshot === undefined) throw new UsageError('--snapshot: required: the VirtualMachineSnapshot to restore');
  const snapshotName = flags.snapshot;
  usage(() => checkObjectName(snapshotName), '--snapshot');
  if (flags.wait) timeoutMs(flags.timeout);
  const { client, namespace } = target(flags);
  const snapshot = await getOrUndefined(() => client.get<SnapshotObject>(VM_SNAPSHOT, namespace, snapshotName));
  if (!snapshot)
    throw new CliError(
      `virtualmachinesnapshot ${snapshotName} not found in namespace ${namespace} (virtfleet snapshot list)`,
    );
  const vms = (snapshot.status?.vms ?? []).map((entry) => entry.vm);
  if (!snapshot.status?.readyToUse)
    throw new CliError(`virtualmachinesnapshot ${snapshotName} is not ready to use (${progressLine(snapshot)})`);
  if (!vms.includes(vm))
    throw new CliError(`virtualmachinesnapshot ${snapshotName} does not hold vm/${vm}; it holds ${vms.join(', ')}`);
  const name = `${snapshotName.slice(0, 230).replace(/[.-]+$/, '')}-restore-${randomBytes(3).toString('hex')}`;
  await client.create<RestoreObject>(VM_RESTORE, {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachineRestore',
    metadata: { name, namespace },
    spec: { snapshotName, ...(flags.all ? {} : { vmName: vm }) },
  });
  const label = `vmrestore/${name}:`;
  out(`${label} asked to restore ${flags.all ? vms.map((v) => `vm/${v}`).join(', ') : `vm/${vm}`} to ${snapshotName}`);
  if (!flags.wait) return name;
  await follow(
    () => getOrUndefined(() => client.get<RestoreObject>(VM_RESTORE, namespace, name)),
    label,
    'Succeeded',
    flags,
    out,
  );
  out(`${label} done`);
  return name;
}

/** `virtfleet snapshot list`: one line per snapshot, as a table. */
export async function runSnapshotList(
  flags: CommonFlags,
  out: (line: string) => void,
  now = new Date(),
): Promise<void> {
  const { client, namespace } = target(flags);
  const list = await client.list<SnapshotObject>(VM_SNAPSHOT, { namespace });
  const rows = [['NAME', 'PHASE', 'READY', 'MEMORY', 'VMS', 'PAUSE-MS', 'AGE']];
  for (const snapshot of list.items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))) {
    const vms = (snapshot.status?.vms ?? []).map((entry) => `${entry.vm}@${entry.host}`);
    const source = snapshot.spec.source.vmName ?? 'selector';
    rows.push([
      snapshot.metadata.name ?? '',
      snapshot.status?.phase ?? 'Pending',
      String(snapshot.status?.readyToUse ?? false),
      String(snapshot.spec.memory),
      vms.length > 0 ? vms.join(',') : source,
      snapshot.status?.cut ? String(snapshot.status.cut.pauseWindowMs) : '-',
      age(snapshot.metadata.creationTimestamp, now),
    ]);
  }
  if (rows.length === 1) {
    out(`no snapshots in namespace ${namespace}`);
    return;
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}

function age(created: Date | string | undefined, now: Date): string {
  if (!created) return '-';
  const seconds = Math.max(0, Math.floor((now.getTime() - new Date(created).getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function common(command: Command, timeout?: string): Command {
  command
    .option('-n, --namespace <namespace>', "namespace (default: the kubeconfig context's, else default)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)');
  if (timeout === undefined) return command;
  return command
    .option('--no-wait', 'return once asked, without following the outcome')
    .addOption(new Option('--timeout <seconds>', 'how long to follow the outcome').default(timeout));
}

function handle(run: () => Promise<unknown>): Promise<void> {
  return run().then(
    () => undefined,
    (error: unknown) => {
      process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
}

const stdout = (line: string) => process.stdout.write(`${line}\n`);

/** `vm snapshot` and `vm restore`, added to the `vm` command by main.ts. */
export function vmSnapshotCommands(): Command[] {
  const snapshot = common(
    new Command('snapshot')
      .argument('<name>', 'the VirtualMachine')
      .description(
        'capture the VM as a VirtualMachineSnapshot: its disks (quiesced by the guest agent when one answers), or with --memory its RAM too',
      ),
    '300',
  )
    .option('--memory', 'capture the RAM state too: a restore continues the guest where it was', false)
    .option('--name <snapshot>', 'name of the VirtualMachineSnapshot (default: NAME-YYYYMMDD-HHMMSS)')
    .action((name: string, flags: SnapshotFlags) => handle(() => runSnapshot(name, flags, stdout)));
  const restore = common(
    new Command('restore')
      .argument('<name>', 'the VirtualMachine')
      .description(
        'bring the VM back to a snapshot (a VirtualMachineRestore): it is stopped, reverted, then run per its runStrategy',
      ),
    '300',
  )
    .option('--snapshot <snapshot>', 'the VirtualMachineSnapshot to restore (required)')
    .option('--all', "restore every VM of the snapshot's group, not only NAME", false)
    .action((name: string, flags: RestoreFlags) => handle(() => runRestore(name, flags, stdout)));
  return [snapshot, restore];
}

/** `virtfleet snapshot list`. */
export function snapshotCommand(): Command {
  const command = new Command('snapshot').description('VirtualMachineSnapshots');
  command.addCommand(
    common(
      new Command('list').description('list the snapshots of a namespace: phase, VMs and hosts, pause window'),
    ).action((flags: CommonFlags) => handle(() => runSnapshotList(flags, stdout))),
  );
  return command;
}
