// spec.graphics into domain XML (read back with the XML parser), where a running domain's VNC
// server listens (read from live XML as libvirt 9.0 writes it), and vncTarget(): what
// `virtfleet api` is told to connect to, or why not.
import { describe, expect, it } from '@jest/globals';
import type { HostPool } from '../../src/api/hostpool.js';
import type { VirtualMachine } from '../../src/api/virtualmachine.js';
import { vncListenOf } from '../../src/hypervisors/domain-graphics.js';
import { DomainSpecError } from '../../src/hypervisors/domain-values.js';
import { buildDomainXml, type DomainXmlInput } from '../../src/hypervisors/domain-xml.js';
import { child, childrenNamed, parseXml, type XmlElement } from '../../src/hypervisors/xml.js';
import { vncTarget } from '../../src/hosts/vnc-target.js';
import { el, serialize } from '../harness/xml.js';
import { kvmInput, xenInput } from './domain-xml-matrix.js';

function graphicsOf(input: DomainXmlInput): XmlElement[] {
  const devices = child(parseXml(buildDomainXml(input).xml), 'devices');
  if (!devices) throw new Error('no <devices>');
  return childrenNamed(devices, 'graphics');
}

function refusal(input: DomainXmlInput): DomainSpecError {
  try {
    buildDomainXml(input);
  } catch (error) {
    if (error instanceof DomainSpecError) return error;
    throw error;
  }
  throw new Error('the input was accepted');
}

describe('spec.graphics in domain XML', () => {
  it('has no graphics device without spec.graphics, whatever the pool says', () => {
    expect(graphicsOf(kvmInput({ graphicsListen: { network: 'management' } }))).toEqual([]);
  });

  it("listens on the pool's libvirt network, with a port libvirt picks", () => {
    const [vnc, ...more] = graphicsOf(
      kvmInput({ graphicsListen: { network: 'management' } }, { graphics: { type: 'vnc' } }),
    );
    expect(more).toEqual([]);
    expect(vnc?.attrs).toEqual({ type: 'vnc', port: '-1', autoport: 'yes' });
    expect(vnc?.children.map((c) => [c.name, c.attrs])).toEqual([
      ['listen', { type: 'network', network: 'management' }],
    ]);
  });

  it('listens on a UNIX socket when the pool says socket, or says nothing', () => {
    for (const input of [
      kvmInput({ graphicsListen: { socket: {} } }, { graphics: { type: 'vnc' } }),
      kvmInput({}, { graphics: { type: 'vnc' } }),
    ]) {
      const [vnc] = graphicsOf(input);
      expect(vnc?.attrs).toEqual({ type: 'vnc' });
      expect(vnc?.children.map((c) => [c.name, c.attrs])).toEqual([['listen', { type: 'socket' }]]);
    }
  });

  it('refuses a network name that is not a libvirt name, naming the field, rather than escape it into XML', () => {
    const error = refusal(
      kvmInput({ graphicsListen: { network: "mgmt' autoport='no" } }, { graphics: { type: 'vnc' } }),
    );
    expect(error.field).toBe('graphics.listen.network');
  });

  it('refuses both listens at once, an unknown type, and Xen guests, each saying what to change', () => {
    expect(
      refusal(kvmInput({ graphicsListen: { network: 'm', socket: {} } }, { graphics: { type: 'vnc' } })).field,
    ).toBe('graphics.listen');
    expect(refusal(kvmInput({}, { graphics: { type: 'spice' as 'vnc' } })).field).toBe('spec.graphics.type');
    const xen = refusal(xenInput('hvm', {}, { graphics: { type: 'vnc' } }));
    expect(xen.field).toBe('spec.graphics');
    expect(xen.message).toContain('set spec.hypervisor to kvm');
  });
});

/** A live domain XML's devices with one graphics element, as libvirt writes it for a running domain. */
function liveXml(graphics: ReturnType<typeof el> | undefined): string {
  return serialize(
    el('domain', { type: 'qemu' }, el('name', {}, 'x'), el('devices', {}, el('serial', { type: 'pty' }), graphics)),
  );
}

describe('vncListenOf (live XML)', () => {
  it('reads the address libvirt resolved from the network and the port it picked', () => {
    const xml = liveXml(
      el(
        'graphics',
        { type: 'vnc', port: 5901, autoport: 'yes', listen: '10.250.3.2' },
        el('listen', { type: 'network', address: '10.250.3.2', network: 'management' }),
      ),
    );
    expect(vncListenOf(xml)).toEqual({ address: '10.250.3.2', port: 5901 });
  });

  it('reads the socket libvirt made', () => {
    const path = '/var/lib/libvirt/qemu/domain-3-default_web-1/vnc.sock';
    const xml = liveXml(el('graphics', { type: 'vnc', socket: path }, el('listen', { type: 'socket', socket: path })));
    expect(vncListenOf(xml)).toEqual({ socket: path });
  });

  it('knows nothing yet from a persistent definition (port -1) or a domain without VNC', () => {
    expect(
      vncListenOf(
        liveXml(
          el(
            'graphics',
            { type: 'vnc', port: -1, autoport: 'yes' },
            el('listen', { type: 'network', network: 'management' }),
          ),
        ),
      ),
    ).toBeUndefined();
    expect(vncListenOf(liveXml(undefined))).toBeUndefined();
  });

  it('reads back what the builder wrote once libvirt has filled it in (the round trip)', () => {
    const built = parseXml(
      buildDomainXml(kvmInput({ graphicsListen: { network: 'management' } }, { graphics: { type: 'vnc' } })).xml,
    );
    const vnc = childrenNamed(child(built, 'devices')!, 'graphics')[0]!;
    // What libvirt does on start: a port instead of -1, the network's address on the listen.
    vnc.attrs.port = '5902';
    vnc.children[0]!.attrs.address = '10.250.9.2';
    expect(vncListenOf(serialize(built))).toEqual({ address: '10.250.9.2', port: 5902 });
  });
});

const POOL: Pick<HostPool, 'metadata' | 'spec'> = {
  metadata: { name: 'local' },
  spec: {
    hosts: [{ name: 'host-a', uri: 'qemu+tcp://10.250.3.2/system', maintenance: false }],
    scheduling: { strategy: 'spread', cpuOvercommit: 4, memoryOvercommit: 1 },
    failureDetection: { heartbeatPeriodSeconds: 2, failureThreshold: 3 },
    storage: { pool: 'default', shared: false },
    network: { name: 'default' },
    graphics: { listen: { network: 'management' } },
  },
};

function vm(status: VirtualMachine['status'], graphics = true): Pick<VirtualMachine, 'metadata' | 'spec' | 'status'> {
  return {
    metadata: { name: 'demo', namespace: 'default' },
    spec: {
      hostPoolRef: { name: 'local' },
      hypervisor: 'kvm',
      workload: 'general',
      runStrategy: 'Always',
      cpu: { cores: 1, sockets: 1, threads: 1 },
      memory: '128Mi',
      firmware: { type: 'bios', secureBoot: false },
      recovery: { restartBackoff: { initialSeconds: 1, maxSeconds: 300 }, evacuate: true, priority: 0 },
      ...(graphics ? { graphics: { type: 'vnc' as const } } : {}),
    },
    ...(status ? { status } : {}),
  };
}

const EMPTY_POOL: Pick<HostPool, 'metadata' | 'spec'> = { ...POOL, spec: { ...POOL.spec, hosts: [] } };

describe('vncTarget', () => {
  const running = {
    phase: 'Running' as const,
    host: 'host-a',
    graphics: { type: 'vnc' as const, host: 'host-a', address: '10.250.3.2', port: 5900 },
  };

  it('gives the address and port of the host the VM runs on', () => {
    expect(vncTarget(vm(running), POOL)).toEqual({
      target: { host: 'host-a', uri: 'qemu+tcp://10.250.3.2/system', address: '10.250.3.2', port: 5900 },
    });
  });

  it('gives the socket path for a socket listen', () => {
    const status = { ...running, graphics: { type: 'vnc' as const, host: 'host-a', socket: '/run/x/vnc.sock' } };
    expect(vncTarget(vm(status), POOL)).toEqual({
      target: { host: 'host-a', uri: 'qemu+tcp://10.250.3.2/system', socket: '/run/x/vnc.sock' },
    });
  });

  it.each([
    ['NoGraphics', vm(running, false), POOL, 'add spec.graphics'],
    ['NotRunning', vm({ ...running, phase: 'Stopped' }), POOL, 'is Stopped'],
    ['NotRunning', vm(undefined), POOL, 'not started yet'],
    // Moved by a migration: what status.graphics says is about the old host.
    ['NotKnownYet', vm({ ...running, host: 'host-b' }), POOL, 'host host-b'],
    ['NotKnownYet', vm({ phase: 'Running', host: 'host-a' }), POOL, 'RestartRequired'],
    ['HostNotInPool', vm(running), undefined, 'HostPool local'],
    ['HostNotInPool', vm(running), EMPTY_POOL, 'not in HostPool'],
  ] as const)('says %s, and why', (reason, machine, pool, words) => {
    const result = vncTarget(machine, pool);
    expect(result).toEqual({ unavailable: { reason, message: expect.stringContaining(words) } });
  });
});
