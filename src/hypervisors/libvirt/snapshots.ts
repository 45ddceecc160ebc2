// Snapshot XML both ways: what createSnapshot sends (internal snapshots, memory or not) and the
// SnapshotInfo read back from a snapshot's description.
import type { NewSnapshot, SnapshotInfo } from '../hypervisor.js';
import { child, el, parseXml, serializeXml } from '../xml.js';

// Names reach the host's metadata files and the qcow2 snapshot table: a safe alphabet only.
const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** The error message when `name` cannot be a snapshot name; undefined when it can. */
export function snapshotNameProblem(name: string): string | undefined {
  return SNAPSHOT_NAME.test(name)
    ? undefined
    : `snapshot name ${JSON.stringify(name)} must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit`;
}

/** The <domainsnapshot> of an internal snapshot, with the memory state or without. */
export function snapshotXml(snapshot: NewSnapshot): string {
  return serializeXml(
    el(
      'domainsnapshot',
      {},
      el('name', {}, snapshot.name),
      snapshot.description !== undefined && el('description', {}, snapshot.description),
      el('memory', { snapshot: snapshot.memory ? 'internal' : 'no' }),
    ),
  );
}

/** A snapshot's description as the host gives it, as a SnapshotInfo. */
export function snapshotInfoOf(xml: string, parent: string | null): SnapshotInfo {
  const root = parseXml(xml);
  const text = (name: string): string => child(root, name)?.text.trim() ?? '';
  const state = text('state');
  const memoryMode = child(root, 'memory')?.attrs.snapshot;
  // Older descriptions have no <memory>: a snapshot of a running or paused domain has its RAM.
  const memory = memoryMode !== undefined ? memoryMode === 'internal' : state === 'running' || state === 'paused';
  return {
    name: text('name'),
    description: text('description'),
    createdAt: new Date(Number(text('creationTime') || '0') * 1000),
    domainState: state,
    memory,
    parent,
  };
}
