// `virtfleet vm suspend|resume` on a simulated host, driven through the CLI's own functions
// against the real API server: managed save ends the domain's process (state shutoff with a
// saved image), the hold keeps it so whatever the runStrategy, and resume starts it from the image.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAction } from '../../../src/cli/vm.js';
import { VIRTUAL_MACHINE } from '../../../src/controllers/resources.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'suspend-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };

const bench = new ControllerBench('vm-suspend', { hostRetryMs: 1_000 });
let pool: string;

beforeAll(async () => {
  await bench.start();
  pool = await bench.createPool('suspend', [HOST]);
  await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'host ready');
});

afterAll(async () => {
  await bench.close();
});

async function vmCli(action: 'suspend' | 'resume' | 'start', name: string): Promise<string[]> {
  const lines: string[] = [];
  await runAction(action, name, { namespace: bench.namespace, wait: true, timeout: '30' }, (line) => lines.push(line));
  return lines;
}

const uidOf = (name: string) => bench.vm(name)?.metadata.uid ?? '';

describe('vm suspend and resume', () => {
  it('suspends a running VM with runStrategy Always: memory saved, no process, held Suspended', async () => {
    await bench.createVm('saved', pool, { runStrategy: 'Always' });
    await bench.untilVm('saved', isRunning, 'Running');

    const lines = await vmCli('suspend', 'saved');
    expect(lines.at(-1)).toBe('vm/saved: suspend done: suspended; it stays suspended until `virtfleet vm resume`');
    const vm = await bench.untilVm('saved', (v) => v.status?.phase === 'Suspended', 'Suspended');
    expect(condition(vm, 'Ready')).toMatchObject({ status: 'True', reason: 'SuspendedByUser' });
    expect(condition(vm, 'Ready')?.message).toMatch(/`virtfleet vm resume saved` continues it/);
    // It keeps its place: same host in status.
    expect(vm.status?.host).toBe(HOST.name);
    const hypervisor = bench.hypervisor(HOST);
    expect(await hypervisor.state(uidOf('saved'))).toMatchObject({ state: 'shutoff', id: null });
    expect(await hypervisor.hasManagedSave(uidOf('saved'))).toBe(true);
    const events = await bench.events('saved');
    expect(events.find((e) => e.reason === 'Suspended')?.message).toMatch(/memory saved to disk/);
    // runStrategy Always does not start it again while the hold lasts; nor is it counted as a crash.
    expect(vm.status?.restarts ?? 0).toBe(0);
  });

  it('resumes it from the saved image', async () => {
    const lines = await vmCli('resume', 'saved');
    expect(lines.at(-1)).toBe('vm/saved: resume done: started');
    const vm = await bench.untilVm('saved', isRunning, 'Running');
    expect(vm.status?.restarts ?? 0).toBe(0);
    const hypervisor = bench.hypervisor(HOST);
    expect((await hypervisor.state(uidOf('saved'))).state).toBe('running');
    // The start consumed the image: it continued from it.
    expect(await hypervisor.hasManagedSave(uidOf('saved'))).toBe(false);
  });

  it('holds a stopped VM stopped under suspend (nothing to save), saying so', async () => {
    await bench.createVm('cold', pool, { runStrategy: 'Manual' });
    await bench.untilVm('cold', (v) => v.status?.phase === 'Stopped', 'Stopped');
    const lines = await vmCli('suspend', 'cold');
    expect(lines.at(-1)).toBe('vm/cold: suspend done: was not running; held stopped');
    const vm = await bench.untilVm('cold', (v) => v.status?.lastAction?.action === 'suspend', 'suspend recorded');
    expect(vm.status?.phase).toBe('Stopped');
    expect(condition(vm, 'Ready')?.message).toMatch(/nothing to save/);
    expect(await bench.hypervisor(HOST).hasManagedSave(uidOf('cold'))).toBe(false);
  });

  it('deletes a suspended VM with its definition and saved image', async () => {
    await vmCli('suspend', 'saved');
    await bench.untilVm('saved', (v) => v.status?.phase === 'Suspended', 'Suspended again');
    const uid = uidOf('saved');
    expect(await bench.hypervisor(HOST).hasManagedSave(uid)).toBe(true);
    await bench.kube.delete(VIRTUAL_MACHINE, bench.namespace, 'saved');
    await bench.until(() => !bench.vm('saved'), 30_000, 'the suspended VM to be deleted');
    expect(await bench.hypervisor(HOST).lookup(uid)).toBeUndefined();
  });
});
