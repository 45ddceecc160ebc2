// Marks the leader's own pod with a label while it leads, so that a Service selecting that label
// sends traffic to the one replica that serves it (the leader runs the runnables; a standby does
// not listen). A Manager runnable: it runs on the leader only, labels the pod when it starts and
// takes the label off when leadership ends or the process stops cleanly. A process that died
// leading leaves the label behind, so every start first clears it on its own pod (a restarted
// container keeps its pod). Outside a pod (no POD_NAME/POD_NAMESPACE) it does nothing.
import type { Logger } from '../observability/logging.js';
import { abortableDelay, untilAborted } from './abort.js';
import { isNotFound, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';

export const POD: ResourceType = { kind: 'Pod', group: '', version: 'v1', plural: 'pods', namespaced: true };

export interface LeaderPodLabelOptions {
  client: KubeClient;
  logger: Logger;
  /** The label key set to "true" on the leader's pod. */
  label: string;
  /** This process's pod (POD_NAME, POD_NAMESPACE from the downward API); unset outside a pod. */
  pod?: { name: string; namespace: string } | undefined;
  /** How long to wait before trying again to label the pod after a failed request. Default 2 s. */
  retryMs?: number;
}

/** The pod named by POD_NAME and POD_NAMESPACE, when both are set. */
export function podFromEnv(env: NodeJS.ProcessEnv = process.env): { name: string; namespace: string } | undefined {
  return env.POD_NAME && env.POD_NAMESPACE ? { name: env.POD_NAME, namespace: env.POD_NAMESPACE } : undefined;
}

export class LeaderPodLabel {
  readonly name = 'leader-pod-label';
  private readonly logger: Logger;

  constructor(private readonly options: LeaderPodLabelOptions) {
    const { pod, label } = options;
    this.logger = options.logger.child({ label, ...(pod ? { pod: `${pod.namespace}/${pod.name}` } : {}) });
    if (!pod) this.logger.debug('POD_NAME or POD_NAMESPACE is not set: no pod is labelled as the leader');
  }

  /** Before leading: takes off a label a previous process in this pod left (it died leading). */
  async clearStale(): Promise<void> {
    const { client, pod, label } = this.options;
    if (!pod) return;
    try {
      const current = await client.get<KubeObject>(POD, pod.namespace, pod.name);
      if (current.metadata?.labels?.[label] === undefined) return;
      await this.patch(null);
      this.logger.info('cleared the leader label a previous process of this pod left');
    } catch (error) {
      this.logger.warn({ err: error }, 'cannot clear a stale leader label on this pod');
    }
  }

  /** While leading: the pod carries the label; off again when `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    if (!this.options.pod) return;
    // Retried while leading: without the label the Service has no endpoint for the whole term.
    while (!signal.aborted) {
      try {
        await this.patch('true');
        this.logger.info('labelled this pod as the leader');
        break;
      } catch (error) {
        if (isNotFound(error)) {
          this.logger.warn({ err: error }, 'this pod does not exist: it cannot be labelled as the leader');
          return;
        }
        this.logger.warn({ err: error }, 'cannot label this pod as the leader; trying again');
        await abortableDelay(this.options.retryMs ?? 2_000, signal);
      }
    }
    await untilAborted(signal);
    try {
      await this.patch(null);
      this.logger.info('took the leader label off this pod');
    } catch (error) {
      // The next start in this pod clears it; a deleted pod takes it along.
      this.logger.warn({ err: error }, 'cannot take the leader label off this pod');
    }
  }

  /** A JSON merge patch of the one label: "true" sets it, null removes it. */
  private patch(value: 'true' | null): Promise<KubeObject> {
    const { client, pod, label } = this.options;
    return client.patch(POD, pod!.namespace, pod!.name, { metadata: { labels: { [label]: value } } });
  }
}
