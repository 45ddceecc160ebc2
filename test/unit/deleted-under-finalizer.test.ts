// Which DELETED watch events show a VM the API server deleted under the controller's finalizer
// (kubernetes#77988), whose deletion's work the controller then does (vm/deletion.ts). A DELETED
// event's object is the last state stored before the deletion, so a VM deleted as it should be
// still shows the finalizer there, but also its deletionTimestamp: acting on it would undo a
// `vm delete --force`, which removes the finalizer by hand to leave the domain.
import { describe, expect, it } from '@jest/globals';
import { VM_FINALIZER, type VmObject } from '../../src/controllers/resources.js';
import { deletedUnderFinalizer } from '../../src/controllers/vm/deletion.js';

function vm(metadata: Record<string, unknown>): VmObject {
  return {
    apiVersion: 'virtfleet.io/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'a', ...metadata },
  } as VmObject;
}

describe('deletedUnderFinalizer', () => {
  it('is true for a VM with the finalizer that was never marked for deletion (the race)', () => {
    expect(deletedUnderFinalizer(vm({ finalizers: [VM_FINALIZER] }), false)).toBe(true);
  });

  it('is false for a VM marked for deletion first: the controller, or a person with --force, let it go', () => {
    const marked = vm({ finalizers: [VM_FINALIZER], deletionTimestamp: '2026-12-08T00:47:39Z' });
    expect(deletedUnderFinalizer(marked, false)).toBe(false);
  });

  it('is false without the finalizer, and for a relist tombstone, which shows only what the cache saw', () => {
    expect(deletedUnderFinalizer(vm({ finalizers: ['example.com/other'] }), false)).toBe(false);
    expect(deletedUnderFinalizer(vm({}), false)).toBe(false);
    expect(deletedUnderFinalizer(vm({ finalizers: [VM_FINALIZER] }), true)).toBe(false);
  });
});
