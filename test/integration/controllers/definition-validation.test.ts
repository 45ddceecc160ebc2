// libvirt's schema check of a domain definition is asked once per shape of definition on a
// libvirt (vm/validated-definitions.ts): a second VM of the same spec is defined without it, a VM
// of another spec with it. What the controller asked is read from its own timing probe of each
// libvirt call (src/runtime/trace.ts), the same the scale bench reads.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { TRACE_CHANNELS, type HypervisorCallTrace } from '../../../src/runtime/trace.js';
import { ControllerBench, isRunning, type HostDecl } from './fixtures.js';

const HOST: HostDecl = { name: 'kvm-1', cpus: 8, memoryGiB: 8, hypervisor: 'kvm' };

const bench = new ControllerBench('vm-validate');
let pool: string;
const defines: string[] = [];
const onCall = (message: unknown) => {
  const { operation } = message as HypervisorCallTrace;
  if (operation.startsWith('define domain')) defines.push(operation);
};

beforeAll(async () => {
  subscribe(TRACE_CHANNELS.hypervisorCall, onCall);
  await bench.start();
  pool = await bench.createPool('validate', [HOST]);
});

afterAll(async () => {
  unsubscribe(TRACE_CHANNELS.hypervisorCall, onCall);
  await bench.close();
});

describe('libvirt schema validation of domain definitions', () => {
  it('validates the first definition of a shape and not a second VM of the same spec', async () => {
    await bench.createVm('first', pool);
    await bench.untilVm('first', isRunning, 'first Running');
    expect(defines).toEqual(['define domain']);
    await bench.createVm('second', pool);
    await bench.untilVm('second', isRunning, 'second Running');
    expect(defines).toEqual(['define domain', 'define domain (validated before)']);
  });

  it('validates a definition of another shape (another spec) again', async () => {
    await bench.createVm('bigger', pool, { cpu: { cores: 2 } });
    await bench.untilVm('bigger', isRunning, 'bigger Running');
    expect(defines).toEqual(['define domain', 'define domain (validated before)', 'define domain']);
  });
});
