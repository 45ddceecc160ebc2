// The one rule for where a VM runs (src/controllers/vm/location.ts), case by case: the cases the
// rig found (a partition at a migration's switchover, a controller restart mid-migration) first.
import { describe, expect, it } from '@jest/globals';
import { locate, type Sighting } from '../../src/controllers/vm/location.js';

const running = (host: string, reason = 'migrated'): Sighting => ({
  host,
  reach: 'reachable',
  domain: { state: 'running', reason },
});
const paused = (host: string, reason = 'migration'): Sighting => ({
  host,
  reach: 'reachable',
  domain: { state: 'paused', reason },
});
const shutoff = (host: string): Sighting => ({
  host,
  reach: 'reachable',
  domain: { state: 'shutoff', reason: 'migrated' },
});
const none = (host: string): Sighting => ({ host, reach: 'reachable' });
const gone = (host: string): Sighting => ({ host, reach: 'unreachable' });
const fenced = (host: string): Sighting => ({ host, reach: 'fenced' });
const MIGRATION = { source: 'rig-0', target: 'rig-1' };

describe('locate', () => {
  it('keeps the migrated copy when the source resumed beside it (split-brain after a cut at the switchover)', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: MIGRATION,
      migrating: false,
      sightings: [running('rig-0', 'migration_canceled'), running('rig-1')],
    });
    expect(verdict).toMatchObject({
      kind: 'split-brain',
      keep: 'rig-1',
      remove: [{ host: 'rig-0', state: 'running' }],
    });
  });

  it('calls two running copies split-brain even while this process runs the migration', () => {
    expect(
      locate({ host: 'rig-0', migration: MIGRATION, migrating: true, sightings: [running('rig-0'), running('rig-1')] })
        .kind,
    ).toBe('split-brain');
  });

  it('keeps status.host when two copies run and no migration is recorded', () => {
    expect(
      locate({
        host: 'rig-2',
        migration: undefined,
        migrating: false,
        sightings: [running('rig-1'), running('rig-2')],
      }),
    ).toMatchObject({ kind: 'split-brain', keep: 'rig-2' });
  });

  it('adopts the migrated copy after a restart (status.host still names the source), and removes the paused source', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: MIGRATION,
      migrating: false,
      sightings: [paused('rig-0'), running('rig-1')],
    });
    expect(verdict).toEqual({
      kind: 'settled',
      host: 'rig-1',
      running: true,
      copy: true,
      remove: [{ host: 'rig-0', state: 'paused', why: 'the VM runs on rig-1' }],
    });
  });

  it('adopts the migrated copy when the source has none left', () => {
    expect(
      locate({ host: 'rig-0', migration: MIGRATION, migrating: false, sightings: [none('rig-0'), running('rig-1')] }),
    ).toMatchObject({ kind: 'settled', host: 'rig-1', running: true, remove: [] });
  });

  it('starts nothing and removes nothing while the source of a completed migration does not answer', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: MIGRATION,
      migrating: false,
      sightings: [gone('rig-0'), running('rig-1')],
    });
    expect(verdict).toMatchObject({ kind: 'blind', hosts: ['rig-0'], running: 'rig-1' });
  });

  it('waits (never a cold boot) when status.host does not answer and no copy is seen elsewhere', () => {
    expect(
      locate({
        host: 'rig-0',
        migration: undefined,
        migrating: false,
        sightings: [gone('rig-0'), none('rig-1'), none('rig-2')],
      }),
    ).toMatchObject({ kind: 'blind', hosts: ['rig-0'], running: undefined });
  });

  it('after fencing, adopts a copy already running on a reachable host instead of starting another', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: MIGRATION,
      migrating: false,
      sightings: [fenced('rig-0'), running('rig-1'), none('rig-2')],
    });
    expect(verdict).toMatchObject({ kind: 'settled', host: 'rig-1', running: true });
  });

  it('after fencing with no copy anywhere, lets the VM be started (on status.host or wherever placement says)', () => {
    expect(
      locate({ host: 'rig-0', migration: undefined, migrating: false, sightings: [fenced('rig-0'), none('rig-1')] }),
    ).toEqual({ kind: 'settled', host: 'rig-0', running: false, copy: false, remove: [] });
  });

  it('ignores an unreachable host that never held the VM', () => {
    expect(
      locate({ host: 'rig-1', migration: undefined, migrating: false, sightings: [running('rig-1'), gone('rig-2')] }),
    ).toMatchObject({ kind: 'settled', host: 'rig-1', running: true });
  });

  it('leaves both copies alone while this process runs the migration', () => {
    expect(
      locate({ host: 'rig-0', migration: MIGRATION, migrating: true, sightings: [running('rig-0'), paused('rig-1')] }),
    ).toEqual({ kind: 'migrating', source: 'rig-0', target: 'rig-1' });
  });

  it('keeps the source and removes the destination leftover of a migration that failed before the switchover', () => {
    const verdict = locate({
      host: 'rig-0',
      migration: MIGRATION,
      migrating: false,
      sightings: [running('rig-0', 'booted'), paused('rig-1', 'starting_up')],
    });
    expect(verdict).toMatchObject({
      kind: 'settled',
      host: 'rig-0',
      running: true,
      remove: [{ host: 'rig-1', state: 'paused' }],
    });
  });

  it('keeps the source when both copies are paused between the migration steps', () => {
    expect(
      locate({ host: 'rig-0', migration: MIGRATION, migrating: false, sightings: [paused('rig-0'), paused('rig-1')] }),
    ).toMatchObject({ kind: 'settled', host: 'rig-0', running: false, remove: [{ host: 'rig-1' }] });
  });

  it('a VM paused by its user stays where it is', () => {
    expect(
      locate({
        host: 'rig-0',
        migration: undefined,
        migrating: false,
        sightings: [paused('rig-0', 'user'), none('rig-1')],
      }),
    ).toEqual({ kind: 'settled', host: 'rig-0', running: false, copy: true, remove: [] });
  });

  it('removes a stopped copy elsewhere only as a stopped copy, and reports whether the home host has one', () => {
    expect(
      locate({ host: 'rig-1', migration: undefined, migrating: false, sightings: [shutoff('rig-0'), none('rig-1')] }),
    ).toEqual({
      kind: 'settled',
      host: 'rig-1',
      running: false,
      copy: false,
      remove: [{ host: 'rig-0', state: 'shutoff', why: 'a stopped copy; the VM lives on rig-1' }],
    });
  });
});
