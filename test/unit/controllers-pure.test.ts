// The pure pieces of the controllers: what runStrategy asks of a domain, which spec fields wait
// for a restart, and when a host counts as ready.
import { describe, expect, it } from '@jest/globals';
import type { FleetHost, HostObservations } from '../../src/hosts/fleet.js';
import { UNJUDGED } from '../../src/hosts/fleet-host.js';
import { bytesToQuantity, hostReadiness } from '../../src/controllers/pool-status.js';
import { fieldsAwaitingRestart } from '../../src/controllers/restart-required.js';
import { powerAction } from '../../src/controllers/run-strategy.js';
import type { HostFacts } from '../../src/hypervisors/hypervisor.js';

const running = { state: 'running' as const, reason: 'booted' };
const crashed = { state: 'crashed' as const, reason: 'panicked' };
const guestOff = { state: 'shutoff' as const, reason: 'shutdown' };
const neverStarted = { state: 'shutoff' as const, reason: 'unknown' };

describe('powerAction', () => {
  it('keeps an Always VM running whatever stopped it', () => {
    for (const domain of [crashed, guestOff, neverStarted])
      expect(powerAction('Always', domain, undefined, 0, 1000)).toEqual({ action: 'start' });
    expect(powerAction('Always', running, undefined, 0, 1000)).toEqual({ action: 'none' });
  });

  it('restarts a RerunOnFailure VM unless the guest shut itself down', () => {
    expect(powerAction('RerunOnFailure', crashed, undefined, 0, 1000)).toEqual({ action: 'start' });
    expect(powerAction('RerunOnFailure', neverStarted, undefined, 0, 1000)).toEqual({ action: 'start' });
    expect(powerAction('RerunOnFailure', guestOff, undefined, 0, 1000)).toEqual({ action: 'none' });
  });

  it('leaves a Manual VM alone', () => {
    expect(powerAction('Manual', neverStarted, undefined, 0, 1000)).toEqual({ action: 'none' });
    expect(powerAction('Manual', running, undefined, 0, 1000)).toEqual({ action: 'none' });
  });

  it('halts gracefully first, then destroys once the grace period is over', () => {
    expect(powerAction('Halted', running, undefined, 0, 1000)).toEqual({ action: 'shutdown', recheckMs: 1000 });
    expect(powerAction('Halted', running, 0, 400, 1000)).toEqual({ action: 'wait', recheckMs: 600 });
    expect(powerAction('Halted', running, 0, 1000, 1000)).toEqual({ action: 'destroy' });
    expect(powerAction('Halted', guestOff, 0, 5000, 1000)).toEqual({ action: 'none' });
  });
});

function domainXml(memoryKiB: number, vcpus: number, kernel = '/k'): string {
  return `<domain type="qemu"><name>d</name><memory unit="KiB">${memoryKiB}</memory><vcpu>${vcpus}</vcpu>
    <os><type>hvm</type><kernel>${kernel}</kernel></os><devices><emulator>/x</emulator></devices></domain>`;
}

describe('fieldsAwaitingRestart', () => {
  it('names the spec fields where the live and persistent definitions differ', () => {
    expect(fieldsAwaitingRestart(domainXml(131072, 1), domainXml(131072, 1))).toEqual([]);
    expect(fieldsAwaitingRestart(domainXml(131072, 1), domainXml(262144, 2))).toEqual(['spec.memory', 'spec.cpu']);
    expect(fieldsAwaitingRestart(domainXml(131072, 1), domainXml(131072, 1, '/k2'))).toEqual(['spec.kernelBoot']);
  });
});

const facts = (type: HostFacts['type'], driver: string): HostFacts => ({
  uri: 'test:///h',
  hostname: 'h',
  type,
  driver,
  hypervisorVersion: '1.0.0',
  libvirtVersion: '9.0.0',
  cpu: { count: 4, model: 'x', mhz: 1, sockets: 1, cores: 4, threads: 1, numaNodes: 1 },
  memoryBytes: 2 ** 32,
  freeMemoryBytes: undefined,
  capabilities: { arch: 'x86_64', guests: [], kvm: false, xenPv: false },
});

type HostFields = Omit<FleetHost, 'observed' | 'verdict'> & HostObservations;

/** A host record from flat fields: the spec's go to the record, the rest to its observations. */
function host(overrides: Partial<HostFields>): FleetHost {
  const fields: HostFields = {
    pool: 'p',
    name: 'h1',
    uri: 'test:///h',
    declared: undefined,
    labels: {},
    maintenance: false,
    credentialsSecret: undefined,
    credentialsProblem: undefined,
    inSpec: true,
    facts: undefined,
    factsStale: false,
    missedBeats: 0,
    lastBeatAt: 0,
    lastAnswerAt: undefined,
    lastError: undefined,
    disconnected: undefined,
    ...overrides,
  };
  const { pool, name, uri, declared, labels, maintenance, credentialsSecret, inSpec, ...observed } = fields;
  return { pool, name, uri, declared, labels, maintenance, credentialsSecret, inSpec, observed, verdict: UNJUDGED };
}

describe('hostReadiness', () => {
  it('takes the declared hypervisor where libvirt cannot tell, and says so when nothing is declared', () => {
    expect(hostReadiness(host({ facts: facts('test', 'TEST'), declared: 'xen' }), 3)).toEqual({
      ready: true,
      hypervisor: 'xen',
    });
    expect(hostReadiness(host({ facts: facts('test', 'TEST') }), 3)).toMatchObject({
      ready: false,
      reason: 'HypervisorUnknown',
    });
  });

  it('refuses a host whose declared hypervisor contradicts the detected one', () => {
    const readiness = hostReadiness(host({ facts: facts('kvm', 'QEMU'), declared: 'xen' }), 3);
    expect(readiness).toMatchObject({ ready: false, reason: 'HypervisorMismatch' });
    expect(readiness.message).toMatch(/declared|is xen/);
  });

  it('stays ready below the failure threshold, and is NotReady at it or on a disconnect', () => {
    const known = { facts: facts('kvm', 'QEMU'), lastError: 'timeout' };
    expect(hostReadiness(host({ ...known, missedBeats: 2 }), 3)).toEqual({ ready: true, hypervisor: 'kvm' });
    expect(hostReadiness(host({ ...known, missedBeats: 3 }), 3)).toMatchObject({
      ready: false,
      reason: 'HeartbeatMissed',
    });
    expect(hostReadiness(host({ ...known, disconnected: { reason: 'keepalive' } }), 3)).toMatchObject({
      ready: false,
      reason: 'Disconnected',
    });
  });

  it('is NotReady with the reason and message of a credentials problem, whatever else is known', () => {
    const problem = {
      reason: 'CredentialsNotFound',
      message: 'Secret virtfleet-system/ssh-key (credentialsSecretRef) does not exist',
    };
    const readiness = hostReadiness(
      host({
        credentialsSecret: { name: 'ssh-key', namespace: 'virtfleet-system' },
        credentialsProblem: problem,
        facts: facts('kvm', 'QEMU'),
      }),
      3,
    );
    expect(readiness).toEqual({ ready: false, ...problem });
    // A Secret reference whose Secret is usable is no problem.
    expect(
      hostReadiness(
        host({ credentialsSecret: { name: 'ssh-key', namespace: 'virtfleet-system' }, facts: facts('kvm', 'QEMU') }),
        3,
      ),
    ).toEqual({ ready: true, hypervisor: 'kvm' });
  });
});

describe('bytesToQuantity', () => {
  it('uses the largest binary unit that divides the value', () => {
    expect([0, 1024, 128 * 2 ** 20, 4 * 2 ** 30, 1536 * 2 ** 20, 1000].map(bytesToQuantity)).toEqual([
      '0',
      '1Ki',
      '128Mi',
      '4Gi',
      '1536Mi',
      '1000',
    ]);
  });
});
