// Timing probes on node:diagnostics_channel: where a reconcile's time goes (watch event →
// queued → reconcile → API requests and hypervisor calls). Nothing is published unless
// something subscribed (a profiler, bench/scale's --trace preload), so they cost one boolean
// check when unused. Times are epoch milliseconds with sub-millisecond precision
// (performance.timeOrigin + performance.now()), comparable across processes.
import { channel } from 'node:diagnostics_channel';

export interface KubeRequestTrace {
  method: string;
  path: string;
  status: number;
  start: number;
  ms: number;
}

export interface InformerEventTrace {
  resource: string;
  type: 'add' | 'update' | 'delete';
  key: string;
  resourceVersion: string | undefined;
  at: number;
}

export interface EnqueueTrace {
  controller: string;
  key: string;
  at: number;
}

export interface ReconcileTrace {
  controller: string;
  key: string;
  start: number;
  ms: number;
  result: string;
}

export interface HypervisorCallTrace {
  uri: string;
  operation: string;
  start: number;
  ms: number;
  error?: string;
}

export const TRACE_CHANNELS = {
  kubeRequest: 'virtfleet:kube:request',
  informerEvent: 'virtfleet:informer:event',
  enqueue: 'virtfleet:workqueue:add',
  reconcile: 'virtfleet:reconcile',
  hypervisorCall: 'virtfleet:hypervisor:call',
} as const;

export const traces = {
  kubeRequest: channel(TRACE_CHANNELS.kubeRequest),
  informerEvent: channel(TRACE_CHANNELS.informerEvent),
  enqueue: channel(TRACE_CHANNELS.enqueue),
  reconcile: channel(TRACE_CHANNELS.reconcile),
  hypervisorCall: channel(TRACE_CHANNELS.hypervisorCall),
};

/** Now, as the traces tell time. */
export function traceNow(): number {
  return performance.timeOrigin + performance.now();
}
