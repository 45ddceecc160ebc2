// status.upload of a VirtualMachineImage, as `virtfleet api` writes it: one merge patch of the
// whole object (fields it does not hold set to null, so a new upload leaves nothing of the last
// one), and a heartbeat while an upload runs, since the controller takes an upload not written
// for a minute as stopped (src/controllers/image/uploaded.ts).
import type { ImageUploadStatus } from '../api/virtualmachineimage.js';
import { VIRTUAL_MACHINE_IMAGE } from '../controllers/image/resource.js';
import type { Logger } from '../observability/logging.js';
import type { KubeClient } from '../runtime/kube-client.js';

const FIELDS = [
  'state',
  'fingerprint',
  'updatedAt',
  'progress',
  'format',
  'sizeBytes',
  'sha256',
  'checksumVerified',
  'hosts',
  'reason',
  'message',
] as const;

/** How often a running upload's status is written even when its progress text did not change. */
export const HEARTBEAT_MS = 10_000;

export type UploadReport = Omit<ImageUploadStatus, 'updatedAt' | 'fingerprint'>;

export class UploadStatusWriter {
  private last: UploadReport | undefined;
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    private readonly namespace: string,
    private readonly name: string,
    private readonly fingerprint: string,
  ) {}

  /** Writes `report` now (in order after earlier writes); a failed write is logged, not thrown. */
  write(report: UploadReport): Promise<void> {
    this.last = report;
    const upload: Record<string, unknown> = {
      ...report,
      fingerprint: this.fingerprint,
      updatedAt: new Date().toISOString(),
    };
    for (const field of FIELDS) if (upload[field] === undefined) upload[field] = null;
    this.writing = this.writing.then(() =>
      this.client
        .patch(VIRTUAL_MACHINE_IMAGE, this.namespace, this.name, { status: { upload } }, { subresource: 'status' })
        .then(
          () => undefined,
          (error: unknown) =>
            this.logger.warn(
              { image: `${this.namespace}/${this.name}`, err: error instanceof Error ? error.message : String(error) },
              'cannot write status.upload',
            ),
        ),
    );
    return this.writing;
  }

  /** Rewrites the last report every HEARTBEAT_MS until stop(). */
  startHeartbeat(): void {
    this.timer ??= setInterval(() => {
      if (this.last) void this.write(this.last);
    }, HEARTBEAT_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
  }
}
