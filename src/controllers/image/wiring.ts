// The image controller's watches: its own images; VMs (one that stops naming an image lets a
// waiting deletion go on, so the images a VM names are enqueued on its changes); HostPools (a
// host that becomes ready, a new host); and the end of an import job.
import { untilAborted } from '../../runtime/abort.js';
import { Controller } from '../../runtime/controller.js';
import { objectKey } from '../../runtime/informer.js';
import { watchMapped, watchOwn, type Source } from '../../runtime/sources.js';
import { ImageReconciler, type ImageControllerOptions } from './reconciler.js';

export function virtualMachineImageController(options: ImageControllerOptions & { concurrency?: number }): Controller {
  const wakeListeners = new Set<(key: string) => void>();
  const reconciler = new ImageReconciler({
    ...options,
    wake: (key) => {
      for (const listener of wakeListeners) listener(key);
    },
  });
  const wakeSource: Source = async (controller, signal) => {
    const listener = (key: string) => controller.enqueue(key);
    wakeListeners.add(listener);
    const off = options.images.on((event) => {
      if (event.type === 'delete') reconciler.prune();
    });
    await untilAborted(signal);
    off();
    wakeListeners.delete(listener);
  };
  const imagesOfVm = watchMapped(options.vms, (vm) =>
    (vm.spec.disks ?? []).flatMap((disk) =>
      disk.source.image?.name ? [`${vm.metadata.namespace}/${disk.source.image.name}`] : [],
    ),
  );
  const imagesOfPool = watchMapped(
    options.pools,
    (pool) =>
      options.images
        .list()
        .filter((image) => image.spec.hostPoolRef.name === pool.metadata.name)
        .map((image) => objectKey(image)),
    { delayMs: 1_000 },
  );
  return new Controller({
    name: 'virtualmachineimage',
    reconciler,
    logger: options.logger,
    concurrency: options.concurrency ?? 4,
    sources: [watchOwn(options.images), imagesOfVm, imagesOfPool, wakeSource],
  });
}
