// The pure pieces of orphan domain reporting: reading virtfleet's marker from a domain's XML,
// the capped list of orphans in the condition, and the labels of the API request counter.
import { describe, expect, it } from '@jest/globals';
import { domainMarker, orphanList, type OrphanDomain } from '../../src/controllers/orphan-domains.js';
import { buildDomainXml, METADATA_NAMESPACE } from '../../src/hypervisors/domain-xml.js';
import { requestLabels } from '../../src/observability/metrics.js';

const UID = '0b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f';

describe('domainMarker', () => {
  it('reads the VM a domain built by virtfleet belongs to', () => {
    const { xml } = buildDomainXml({
      uid: UID,
      namespace: 'team-a',
      name: 'web',
      spec: {
        cpu: { sockets: 1, cores: 1, threads: 1 },
        memory: '128Mi',
        firmware: { type: 'bios', secureBoot: false },
        kernelBoot: { kernel: '/boot/vmlinuz' },
        disks: [],
        networks: [],
      },
      target: { hypervisor: 'kvm', kvmUsable: false },
    });
    expect(domainMarker(xml)).toEqual({ namespace: 'team-a', name: 'web', uid: UID });
  });

  it('goes by the namespace, whatever prefix libvirt kept', () => {
    const marked = (element: string) => `<domain type="kvm"><name>d</name><metadata>${element}</metadata></domain>`;
    expect(domainMarker(marked(`<x:vm xmlns:x="${METADATA_NAMESPACE}" namespace="n" name="v" uid="${UID}"/>`))).toEqual(
      { namespace: 'n', name: 'v', uid: UID },
    );
    expect(domainMarker(marked(`<vm xmlns="${METADATA_NAMESPACE}" namespace="n" name="v" uid="${UID}"/>`))).toEqual({
      namespace: 'n',
      name: 'v',
      uid: UID,
    });
    // Another application's metadata, even under the same prefix, is not ours.
    expect(
      domainMarker(marked(`<vf:vm xmlns:vf="https://example.com/other" namespace="n" name="v"/>`)),
    ).toBeUndefined();
    // Our namespace mentioned somewhere else (a description) is no marker either.
    expect(
      domainMarker(`<domain><name>d</name><description>${METADATA_NAMESPACE}</description></domain>`),
    ).toBeUndefined();
    expect(domainMarker('<domain type="test"><name>foreign</name></domain>')).toBeUndefined();
    expect(domainMarker(`<domain ${METADATA_NAMESPACE}`)).toBeUndefined(); // not XML: not ours
  });
});

describe('orphanList', () => {
  const orphan = (name: string): OrphanDomain => ({ uuid: UID, name, vm: { namespace: 'n', name, uid: UID } });

  it('names the orphans by host with the URI virsh needs', () => {
    expect(
      orphanList([
        { host: 'h1', uri: 'qemu+ssh://root@h1/system', orphans: [orphan('vf-n_a'), orphan('vf-n_b')] },
        { host: 'h2', uri: 'qemu+ssh://root@h2/system', orphans: [orphan('vf-n_c')] },
      ]),
    ).toBe('h1 (qemu+ssh://root@h1/system): vf-n_a, vf-n_b; h2 (qemu+ssh://root@h2/system): vf-n_c');
  });

  it('names at most ten and says how many more there are', () => {
    const many = Array.from({ length: 8 }, (_, i) => orphan(`vf-n_${i}`));
    expect(
      orphanList([
        { host: 'h1', uri: 'u1', orphans: many },
        { host: 'h2', uri: 'u2', orphans: many },
        { host: 'h3', uri: 'u3', orphans: [orphan('vf-n_x')] },
      ]),
    ).toBe(`h1 (u1): ${many.map((o) => o.name).join(', ')}; h2 (u2): vf-n_0, vf-n_1, and 7 more`);
  });
});

describe('requestLabels', () => {
  it('gives verb and resource without object names', () => {
    expect(requestLabels('GET', '/apis/virtfleet.io/v1alpha1/namespaces/ns/virtualmachines')).toEqual({
      verb: 'list',
      resource: 'virtualmachines',
    });
    expect(requestLabels('GET', '/apis/virtfleet.io/v1alpha1/namespaces/ns/virtualmachines/web')).toEqual({
      verb: 'get',
      resource: 'virtualmachines',
    });
    expect(requestLabels('PATCH', '/apis/virtfleet.io/v1alpha1/hostpools/pool-a/status')).toEqual({
      verb: 'patch',
      resource: 'hostpools/status',
    });
    expect(requestLabels('POST', '/api/v1/namespaces/default/events')).toEqual({ verb: 'create', resource: 'events' });
    expect(requestLabels('PUT', '/apis/coordination.k8s.io/v1/namespaces/ns/leases/lock')).toEqual({
      verb: 'update',
      resource: 'leases',
    });
    expect(requestLabels('DELETE', '/api/v1/namespaces/ns')).toEqual({ verb: 'delete', resource: 'namespaces' });
    expect(requestLabels('POST', '/api/v1/namespaces')).toEqual({ verb: 'create', resource: 'namespaces' });
    expect(requestLabels('PUT', '/api/v1/namespaces/ns/finalize')).toEqual({
      verb: 'update',
      resource: 'namespaces/finalize',
    });
  });
});
