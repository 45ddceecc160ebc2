// Shared pieces of the runtime tests: a namespace per test file and a small
// reconciler that records what it saw. The runtime is exercised on plain
// ConfigMaps: it knows nothing of VMs.
import { randomBytes } from 'node:crypto';
import { KubeClient, type KubeObject, type ResourceType } from '../../../src/runtime/kube-client.js';
import type { ReconcileContext, Reconciler } from '../../../src/runtime/reconciler.js';
import { kubeConfig } from '../../harness/kube.js';

export const CONFIGMAP: ResourceType = {
  kind: 'ConfigMap',
  group: '',
  version: 'v1',
  plural: 'configmaps',
  namespaced: true,
};
export const NAMESPACE: ResourceType = {
  kind: 'Namespace',
  group: '',
  version: 'v1',
  plural: 'namespaces',
  namespaced: false,
};

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export function client(): KubeClient {
  return new KubeClient(kubeConfig());
}

export async function freshNamespace(kube: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kube.create(NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

export function configMap(namespace: string, name: string, data: Record<string, string>): ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name }, data };
}

/** Resolves when `check` holds, re-checking after every call of `poke()`; rejects after `ms`. */
export class Signal {
  private waiters: Array<() => void> = [];
  poke(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
  async until(check: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export interface Seen {
  key: string;
  data: Record<string, string> | undefined;
}

/** Records each reconcile with what the cache held for the key at that moment. */
export class RecordingReconciler implements Reconciler {
  readonly seen: Seen[] = [];
  readonly attempts = new Map<string, number>();
  readonly changed = new Signal();
  /** Reconciles that started while another of the same key was running. */
  overlaps = 0;
  private readonly runningKeys = new Set<string>();
  constructor(
    private readonly lookup: (key: string) => ConfigMap | undefined,
    private readonly behave?: (context: ReconcileContext, attempt: number) => Promise<void>,
  ) {}

  async reconcile(context: ReconcileContext): Promise<void> {
    if (this.runningKeys.has(context.key)) this.overlaps++;
    this.runningKeys.add(context.key);
    try {
      const attempt = (this.attempts.get(context.key) ?? 0) + 1;
      this.attempts.set(context.key, attempt);
      await this.behave?.(context, attempt);
      this.seen.push({ key: context.key, data: this.lookup(context.key)?.data });
    } finally {
      this.runningKeys.delete(context.key);
      this.changed.poke();
    }
  }
}
