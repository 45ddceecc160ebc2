// Step: fetch. The URL streamed to a private temp file (download.ts, redirects followed), its
// sha256 computed from the bytes as written and compared with spec.source.sha256, and its format
// read from its first bytes (format.ts). A failure names the field to fix; the file is removed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { downloadToFile, type DownloadProgress } from '../download.js';
import { errorText } from '../error-text.js';
import { fileFormat } from './format.js';
import { IMAGE_REASONS as R } from './resource.js';
import type { ImageFormatName } from '../../api/virtualmachineimage.js';
import { stagingDir } from '../staging.js';

export interface FetchedImage {
  file: string;
  format: ImageFormatName;
  sizeBytes: number;
  sha256: string;
  /** Removes the file and its directory. */
  dispose(): Promise<void>;
}

/** A failure the user fixes in the spec or at the source: reason, and a message naming the field. */
export class ImageFault extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ImageFault';
  }
}

export async function fetchImage(
  url: string,
  expected: string,
  progress: DownloadProgress,
  signal: AbortSignal,
  tmpDir: string = stagingDir(),
): Promise<FetchedImage> {
  // mkdtemp makes the directory 0700; the file inside is 0600.
  const dir = await mkdtemp(join(tmpDir, 'virtfleet-vmimage-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'image');
    try {
      await downloadToFile(url, file, progress, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new ImageFault(
        R.DownloadFailed,
        `spec.source.url: ${url}: ${errorText(error)}; check that the URL answers (e.g. curl -fI ${url}) and fix spec.source.url`,
      );
    }
    const hash = createHash('sha256');
    await pipeline(createReadStream(file), hash, { signal });
    const sha256 = hash.digest('hex');
    if (sha256 !== expected) {
      throw new ImageFault(
        R.ChecksumMismatch,
        `spec.source.sha256: the downloaded ${progress.received} bytes have sha256 ${sha256}, not ${expected}; ` +
          'correct spec.source.sha256 if the file is the one you meant, else spec.source.url',
      );
    }
    const format = await fileFormat(file);
    if (!format.ok) throw new ImageFault(R.UnsupportedFormat, `spec.source.url: ${format.message}`);
    return { file, format: format.format, sizeBytes: format.sizeBytes, sha256, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
