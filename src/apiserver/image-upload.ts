// The upload subresource of VirtualMachineImages (spec.source.upload): POST the image's bytes to
// .../namespaces/NS/virtualmachineimages/NAME/upload[?sha256=HEX] with a Content-Length.
//
// The bytes go to a private file in the staging directory, hashed as they arrive. Only a whole
// file is kept: a body that ends before its Content-Length (the client or a proxy cut it), a
// sha256 that differs from the one the client sent, content that is no qcow2, raw or ISO 9660
// image, or a qcow2 or ISO whose own tables reach past its end (a file cut short before the
// upload) is refused with the reason, and nothing is written to a host. Once the file is
// checked the answer is 202: writing it to the hosts (image-upload-hosts.ts) may take longer
// than kube-apiserver lets a request last, so it goes on here and status.upload tells how far
// it is (image-upload-status.ts); the controller turns that into the image's Ready.
//
// An image's content does not change under its VMs: an image whose upload is Done takes only the
// same content again (same sha256), written to the hosts that lack it.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImageUploadStatus } from '../api/virtualmachineimage.js';
import { fileFormat } from '../controllers/image/format.js';
import {
  IMAGE_REASONS,
  VIRTUAL_MACHINE_IMAGE,
  imageVolumeName,
  sourceFingerprint,
  type ImageObject,
} from '../controllers/image/resource.js';
import { truncationProblem } from '../controllers/image/truncation.js';
import { currentUpload, uploadActive } from '../controllers/image/uploaded.js';
import type { HostCredentials } from '../hypervisors/libvirt/credentials.js';
import { LibvirtConnectionPool } from '../hypervisors/libvirt/connection-pool.js';
import type { Logger } from '../observability/logging.js';
import type { KubeClient } from '../runtime/kube-client.js';
import { UploadHosts, type StagedImage } from './image-upload-hosts.js';
import { UploadStatusWriter, type UploadReport } from './image-upload-status.js';
import { sendJson, StatusError } from './responses.js';
import { getOrUndefined } from './vm-location.js';

export interface UploadOptions {
  /** The largest body taken, in bytes. */
  maxBytes: number;
  /** Where bodies are staged (a private directory each); default os.tmpdir(). */
  stagingDir?: string;
  credentialsNamespace: string;
}

/** How often progress is written while bytes arrive. */
const PROGRESS_MS = 2_000;
const SHA256 = /^[a-f0-9]{64}$/;

/** A refusal after the upload started: its status.upload reason, and the answer. */
class UploadRefused extends StatusError {
  constructor(
    readonly uploadReason: string,
    code: number,
    reason: ConstructorParameters<typeof StatusError>[1],
    message: string,
  ) {
    super(code, reason, message);
  }
}

export class ImageUploads {
  private readonly pool = new LibvirtConnectionPool();
  private readonly credentials = new Map<string, HostCredentials | undefined>();
  private readonly hosts: UploadHosts;
  /** Images with an upload under way in this process (namespace/name). */
  private readonly active = new Set<string>();
  /** Background host writes, for stop(). */
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    private readonly options: UploadOptions,
  ) {
    this.pool.setCredentials((uri) => this.credentials.get(uri));
    this.hosts = new UploadHosts(client, this.pool, this.credentials, options.credentialsNamespace);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.running]);
    await this.pool.closeAll();
  }

  /** Serves one upload request (already authorized); throws a StatusError to refuse it. */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
    namespace: string,
    name: string,
    user: string,
  ): Promise<void> {
    if (request.method !== 'POST' && request.method !== 'PUT')
      throw new StatusError(405, 'MethodNotAllowed', `upload takes POST or PUT, not ${request.method}`);
    const image = await this.image(namespace, name);
    const length = this.length(request);
    const url = new URL(request.url ?? '/', 'https://localhost');
    const expected = url.searchParams.get('sha256') ?? undefined;
    if (expected !== undefined && !SHA256.test(expected))
      throw new StatusError(400, 'BadRequest', `sha256: "${expected}" is not 64 lowercase hex digits`);
    const key = `${namespace}/${name}`;
    const fingerprint = sourceFingerprint(image);
    const before = currentUpload(image.status?.upload, fingerprint);
    if (this.active.has(key) || uploadActive(before, Date.now()))
      throw new StatusError(
        409,
        'Conflict',
        `an upload of image ${key} is under way (${before?.state ?? 'Receiving'} ${before?.progress ?? ''}); wait for it to end`.replace(
          ' )',
          ')',
        ),
      );
    const repeat = before?.state === 'Done' ? before : undefined;
    if (repeat && expected !== undefined && repeat.sha256 !== undefined && expected !== repeat.sha256)
      throw sameContentOnly(key, expected, repeat.sha256);
    this.active.add(key);
    const status = new UploadStatusWriter(this.client, this.logger, namespace, name, fingerprint);
    // A repeat of a Done upload leaves status as it is until it adds hosts: a failed repeat must
    // not take Ready from an image whose volumes are fine.
    const report = (next: UploadReport) => (repeat ? Promise.resolve() : status.write(next));
    const dir = await mkdtemp(join(this.options.stagingDir ?? tmpdir(), 'virtfleet-upload-'));
    let handedOver = false;
    try {
      await report({ state: 'Receiving', progress: '0%' });
      if (!repeat) status.startHeartbeat();
      this.logger.info({ image: key, user, bytes: length }, 'image upload started');
      const staged = await this.receive(request, join(dir, 'image'), length, expected, (progress) =>
        report({ state: 'Receiving', progress }),
      );
      if (repeat && repeat.sha256 !== undefined && staged.sha256 !== repeat.sha256)
        throw sameContentOnly(key, staged.sha256, repeat.sha256);
      const facts = {
        format: staged.format,
        sizeBytes: staged.sizeBytes,
        sha256: staged.sha256,
        checksumVerified: expected !== undefined,
      };
      sendJson(response, 202, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        code: 202,
        message: `received ${length} bytes (${staged.format}, sha256 ${staged.sha256}); writing them to the hosts of HostPool ${image.spec.hostPoolRef.name}`,
        details: { name, group: 'virtfleet.io', kind: 'virtualmachineimages' },
      });
      handedOver = true;
      const work = this.toHosts(image, staged, facts, repeat, status, dir, key).finally(() => {
        this.running.delete(work);
      });
      this.running.add(work);
    } catch (error) {
      if (error instanceof UploadRefused)
        await report({ state: 'Failed', reason: error.uploadReason, message: error.message });
      else if (!(error instanceof StatusError))
        await report({ state: 'Failed', reason: IMAGE_REASONS.UploadFailed, message: String(error) });
      throw error;
    } finally {
      if (!handedOver) {
        await status.stop();
        await rm(dir, { recursive: true, force: true });
        this.active.delete(key);
      }
    }
  }

  private async image(namespace: string, name: string): Promise<ImageObject> {
    const image = await getOrUndefined(() => this.client.get<ImageObject>(VIRTUAL_MACHINE_IMAGE, namespace, name));
    const details = { name, group: 'virtfleet.io', kind: 'virtualmachineimages' };
    if (!image)
      throw new StatusError(404, 'NotFound', `virtualmachineimages.virtfleet.io "${name}" not found`, details);
    if (image.metadata.deletionTimestamp)
      throw new StatusError(409, 'Conflict', `image ${namespace}/${name} is being deleted`, details);
    if (!image.spec.source.upload) {
      const from = image.spec.source.url ? `spec.source.url (${image.spec.source.url})` : 'spec.source.volume';
      throw new StatusError(
        409,
        'Conflict',
        `image ${namespace}/${name} takes its content from ${from}; an upload needs spec.source.upload: {} (create an image with it)`,
        details,
      );
    }
    return image;
  }

  private length(request: IncomingMessage): number {
    const header = request.headers['content-length'];
    if (header === undefined || !/^\d+$/.test(header))
      throw new StatusError(
        411,
        'BadRequest',
        'an upload needs a Content-Length (the file size), so a body cut short is told from a whole one',
      );
    const length = Number(header);
    if (length === 0) throw new StatusError(400, 'BadRequest', 'the file is empty');
    if (length > this.options.maxBytes)
      throw new StatusError(
        413,
        'RequestEntityTooLarge',
        `the file has ${length} bytes, more than the ${this.options.maxBytes} this API server takes ` +
          '(virtfleet api --max-upload-bytes; its staging volume must hold the file)',
      );
    return length;
  }

  /** The body into `file`, checked whole; throws UploadRefused with the reason otherwise. */
  private async receive(
    request: IncomingMessage,
    file: string,
    length: number,
    expected: string | undefined,
    progress: (text: string) => Promise<void>,
  ): Promise<StagedImage & { sha256: string }> {
    const hash = createHash('sha256');
    let received = 0;
    let shown = Date.now();
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        hash.update(chunk);
        if (Date.now() - shown >= PROGRESS_MS) {
          shown = Date.now();
          void progress(`${Math.floor((received / length) * 100)}%`);
        }
        done(null, chunk);
      },
    });
    try {
      await pipeline(request, counter, createWriteStream(file, { mode: 0o600 }));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      // The staging file could not be written (ENOSPC: the staging volume is full), not a cut body.
      if (/^E[A-Z]+$/.test(code) && code !== 'ECONNRESET' && code !== 'EPIPE')
        throw new UploadRefused(
          IMAGE_REASONS.UploadFailed,
          500,
          'InternalError',
          `cannot stage the upload (${code}): ${String(error)}; the staging volume (--upload-dir) must hold the file: retry later, or ask for a larger one`,
        );
      this.logger.debug({ err: String(error), received, length }, 'upload body ended early');
    }
    if (received !== length || !request.complete)
      throw new UploadRefused(
        IMAGE_REASONS.UploadIncomplete,
        400,
        'BadRequest',
        `the upload was cut after ${received} of ${length} bytes: nothing was kept; run the upload again`,
      );
    const sha256 = hash.digest('hex');
    if (expected !== undefined && sha256 !== expected)
      throw new UploadRefused(
        IMAGE_REASONS.ChecksumMismatch,
        400,
        'BadRequest',
        `the ${length} bytes received have sha256 ${sha256}, not ${expected} as sent: nothing was kept; run the upload again`,
      );
    const format = await fileFormat(file);
    if (!format.ok)
      throw new UploadRefused(IMAGE_REASONS.UnsupportedFormat, 415, 'UnsupportedMediaType', format.message);
    const cut = await truncationProblem(file, format.format);
    if (cut) throw new UploadRefused(IMAGE_REASONS.UploadIncomplete, 400, 'BadRequest', cut);
    return { file, format: format.format, sizeBytes: format.sizeBytes, sha256 };
  }

  private async toHosts(
    image: ImageObject,
    staged: StagedImage,
    facts: Pick<UploadReport, 'format' | 'sizeBytes' | 'sha256' | 'checksumVerified'>,
    repeat: ImageUploadStatus | undefined,
    status: UploadStatusWriter,
    dir: string,
    key: string,
  ): Promise<void> {
    const namespace = image.metadata.namespace ?? '';
    const name = image.metadata.name ?? '';
    const already = repeat?.hosts ?? [];
    try {
      if (repeat && image.status?.shared && already.length > 0) return;
      const volume = imageVolumeName(namespace, name);
      const outcome = await this.hosts.write(image.spec.hostPoolRef.name, volume, staged, already, (host, i, of) => {
        if (!repeat) void status.write({ state: 'Uploading', progress: `to host ${host} (${i} of ${of})`, ...facts });
      });
      const hosts = [...already, ...outcome.done];
      const message = outcome.failed.length > 0 ? outcome.failed.join('; ') : undefined;
      if (hosts.length === 0)
        await status.write({
          state: 'Failed',
          reason: IMAGE_REASONS.UploadFailed,
          ...facts,
          message: message ?? 'no host',
        });
      else if (!repeat || outcome.done.length > 0)
        await status.write({ state: 'Done', ...facts, hosts, ...(message ? { message } : {}) });
      this.logger.info({ image: key, hosts, failed: outcome.failed }, 'image upload written to hosts');
    } catch (error) {
      this.logger.warn({ image: key, err: String(error) }, 'image upload to hosts failed');
      if (!repeat) await status.write({ state: 'Failed', reason: IMAGE_REASONS.UploadFailed, message: String(error) });
    } finally {
      await status.stop();
      await rm(dir, { recursive: true, force: true });
      this.active.delete(key);
    }
  }
}

function sameContentOnly(key: string, sent: string, held: string): StatusError {
  return new StatusError(
    409,
    'Conflict',
    `image ${key} already holds content with sha256 ${held}, not ${sent}: an image's content does not change under its VMs; ` +
      'create another VirtualMachineImage for new content',
  );
}
