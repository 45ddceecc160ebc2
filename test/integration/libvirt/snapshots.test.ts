// Domain snapshots through the binding, against libvirt's test driver:
// create from XML, list names, current snapshot, parent, XML, revert, delete.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LibvirtConnection } from '../../../src/hypervisors/libvirt/native/index.js';
import { domainXml, el, serialize, uniqueName } from './fixtures.js';

function snapshotXml(name: string, description: string): string {
  return serialize(el('domainsnapshot', {}, el('name', {}, name), el('description', {}, description)));
}

describe('libvirt domain snapshots (test driver)', () => {
  let conn: LibvirtConnection;
  const uuid = randomUUID();

  beforeAll(async () => {
    conn = await LibvirtConnection.open('test:///default');
    await conn.defineXML(domainXml({ name: uniqueName('snap'), uuid }));
    await conn.domainCreate(uuid);
  });
  afterAll(async () => {
    await conn.domainDestroy(uuid).catch(() => undefined);
    await conn.domainUndefine(uuid, { snapshotsMetadata: true }).catch(() => undefined);
    await conn.close();
  });

  it('has no snapshots and no current snapshot at first', async () => {
    expect(await conn.domainSnapshotListNames(uuid)).toEqual([]);
    expect(await conn.domainSnapshotCurrent(uuid)).toBeNull();
  });

  it('creates snapshots from XML, lists them, and tracks the current one and parents', async () => {
    expect(await conn.domainSnapshotCreateXML(uuid, snapshotXml('first', 'a <first> & "one"'))).toBe('first');
    expect(await conn.domainSnapshotCurrent(uuid)).toBe('first');
    expect(await conn.domainSnapshotCreateXML(uuid, snapshotXml('second', 'two'))).toBe('second');
    expect(await conn.domainSnapshotCurrent(uuid)).toBe('second');

    expect((await conn.domainSnapshotListNames(uuid)).sort()).toEqual(['first', 'second']);
    expect(await conn.domainSnapshotListNames(uuid, { topological: true })).toEqual(['first', 'second']);
    expect(await conn.domainSnapshotListNames(uuid, { roots: true })).toEqual(['first']);
    expect(await conn.domainSnapshotGetParent(uuid, 'second')).toBe('first');
    expect(await conn.domainSnapshotGetParent(uuid, 'first')).toBeNull();

    const xml = await conn.domainSnapshotGetXMLDesc(uuid, 'first');
    expect(xml).toContain('<name>first</name>');
    expect(xml).toContain('<description>a &lt;first&gt; &amp; &quot;one&quot;</description>');
    expect(xml).toContain(`<uuid>${uuid}</uuid>`);
  });

  it('reverts to a snapshot, which becomes current, with the domain state it had', async () => {
    await conn.domainSuspend(uuid);
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'paused' });
    await conn.domainSnapshotRevert(uuid, 'first');
    expect(await conn.domainSnapshotCurrent(uuid)).toBe('first');
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'running' });
    await conn.domainSnapshotRevert(uuid, 'second', { paused: true });
    expect(await conn.domainGetState(uuid)).toMatchObject({ state: 'paused' });
    await conn.domainResume(uuid);
  });

  it('deletes snapshots: one, then children, with the current snapshot following', async () => {
    await conn.domainSnapshotCreateXML(uuid, snapshotXml('third', 'three'));
    expect(await conn.domainSnapshotGetParent(uuid, 'third')).toBe('second');
    await conn.domainSnapshotDelete(uuid, 'third');
    expect((await conn.domainSnapshotListNames(uuid)).sort()).toEqual(['first', 'second']);

    await conn.domainSnapshotDelete(uuid, 'first', { childrenOnly: true });
    expect(await conn.domainSnapshotListNames(uuid)).toEqual(['first']);
    await conn.domainSnapshotDelete(uuid, 'first', { children: true });
    expect(await conn.domainSnapshotListNames(uuid)).toEqual([]);
    expect(await conn.domainSnapshotCurrent(uuid)).toBeNull();
  });

  it('rejects unknown snapshots and domains, and broken XML', async () => {
    await expect(conn.domainSnapshotRevert(uuid, 'nosuch')).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_DOMAIN_SNAPSHOT',
      code: 72,
    });
    await expect(conn.domainSnapshotDelete(uuid, 'nosuch')).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_DOMAIN_SNAPSHOT',
    });
    await expect(conn.domainSnapshotGetXMLDesc(uuid, 'nosuch')).rejects.toMatchObject({
      codeName: 'VIR_ERR_NO_DOMAIN_SNAPSHOT',
    });
    await expect(conn.domainSnapshotListNames(randomUUID())).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
    await expect(conn.domainSnapshotCreateXML(uuid, '<domainsnapshot>')).rejects.toMatchObject({
      codeName: 'VIR_ERR_XML_DETAIL',
    });
  });

  it('refuses to undefine a domain with snapshots unless their metadata goes too', async () => {
    const other = randomUUID();
    await conn.defineXML(domainXml({ name: uniqueName('snap-undef'), uuid: other }));
    await conn.domainSnapshotCreateXML(other, snapshotXml('only', 'x'));
    await expect(conn.domainUndefine(other)).rejects.toMatchObject({ codeName: 'VIR_ERR_OPERATION_INVALID' });
    await conn.domainUndefine(other, { snapshotsMetadata: true });
    await expect(conn.lookupDomainByUUID(other)).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
  });
});
