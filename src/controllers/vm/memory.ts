// What this process remembers of each VM, in one place, so that forgetting a VM is one call.
// Identity never rests on it (the domain's UUID is the VM's UID, status.host says where it is):
// it only saves libvirt calls, times grace periods, and bridges the cache's lag behind our writes.
import type { VmStatusDraft } from '../vm-status.js';

export interface VmMemory {
  /** The object's namespace/name (the key), and its labels for per-VM metric series. */
  key: string;
  namespace: string;
  name: string;
  /** The XML this process last defined, so an unchanged spec costs no define call. */
  defined?: string;
  /** When this process asked the guest to shut down (Halted, stop, delete). */
  shutdownSince?: number;
  /** When the failed host this VM is being moved off was declared failed (for the recovery metric). */
  evacuatedAt?: number;
  /** The reason label of its virtfleet_vm_recovery_blocked series, if any. */
  blockedReason?: string;
  /**
   * A failed host's VM tried elsewhere by lease (lease-recovery.ts): the host it left (unknown
   * after a restart), refused starts so far, and while a refusal waits, the next try and why.
   */
  leaseRecovery?: { from?: string; failedAt?: number; refusals: number; retryAt?: number; message?: string };
  /**
   * The status this process last wrote. The cache lags our own writes; a reconcile that started
   * from the older status would restart a VM twice for one request, lose a count, or write an old
   * condition back over a newer one (conditions are replaced as a list). With leader election
   * this process is the only writer of VM status, so its last write is the truth until the cache
   * shows it; after a restart the cache is all there is.
   */
  written?: VmStatusDraft['status'];
  /** Steps of the reconcile under way that make one Event together when it ends (VmKit.note). */
  notes?: Array<{ reason: string; message: string }>;
}

export class VmMemories {
  private readonly byUid = new Map<string, VmMemory>();
  private readonly uidByKey = new Map<string, string>();

  /** The VM's memory, made on first use. */
  of(uid: string, key: string, namespace: string, name: string): VmMemory {
    let memory = this.byUid.get(uid);
    if (!memory) {
      memory = { key, namespace, name };
      this.byUid.set(uid, memory);
      this.uidByKey.set(key, uid);
    }
    return memory;
  }

  peek(uid: string): VmMemory | undefined {
    return this.byUid.get(uid);
  }

  uidOf(key: string): string | undefined {
    return this.uidByKey.get(key);
  }

  drop(uid: string): void {
    const memory = this.byUid.get(uid);
    if (memory && this.uidByKey.get(memory.key) === uid) this.uidByKey.delete(memory.key);
    this.byUid.delete(uid);
  }
}
