// The shared cache: one informer per watched resource type, however many
// controllers read it. Reconcilers read from here, never from the API server.
import type { Logger } from '../observability/logging.js';
import { Informer, type InformerOptions } from './informer.js';
import type { KubeClient, KubeObject, ResourceType } from './kube-client.js';
import { untilAborted } from './abort.js';

export class Cache {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private running: Promise<void>[] = [];
  private signal: AbortSignal | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
  ) {}

  informerFor<T extends KubeObject>(type: ResourceType, options: Omit<InformerOptions, 'logger'> = {}): Informer<T> {
    const id = [
      type.group,
      type.version,
      type.plural,
      options.namespace ?? '',
      options.labelSelector ?? '',
      options.fieldSelector ?? '',
    ].join('|');
    let informer = this.informers.get(id);
    if (!informer) {
      informer = new Informer<KubeObject>(this.client, type, { ...options, logger: this.logger });
      this.informers.set(id, informer);
      // An informer asked for after start() starts at once.
      if (this.signal) this.running.push(informer.run(this.signal));
    }
    return informer as unknown as Informer<T>;
  }

  /** Starts every informer; resolves when all have stopped after `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    this.running = [...this.informers.values()].map((informer) => informer.run(signal));
    await untilAborted(signal);
    await Promise.all(this.running);
  }

  waitForSync(): Promise<void> {
    return Promise.all([...this.informers.values()].map((informer) => informer.waitForSync())).then(() => undefined);
  }
}
