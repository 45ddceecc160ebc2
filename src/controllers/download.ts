// A URL streamed to a private file, its bytes counted as they come: what the controller does
// before the binding uploads an image disk (vm-storage.ts) or an installer's kernel and initrd
// (install/media.ts) to a host.
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { errorText } from './error-text.js';

/** How far a download is: bytes received, and the whole (Content-Length) when the server said. */
export interface DownloadProgress {
  received: number;
  total: number | undefined;
}

/**
 * Streams `url` (redirects followed) into `file`, made with mode 0600, counting the bytes into
 * `progress` (`total` from Content-Length). Rejects on a failed fetch, an HTTP error, a body
 * shorter than its Content-Length, or `signal` aborting.
 */
export async function downloadToFile(
  url: string,
  file: string,
  progress: DownloadProgress,
  signal?: AbortSignal,
): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    throw new Error(`cannot fetch: ${errorText(error)}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  }
  const length = Number(response.headers.get('content-length'));
  progress.total = Number.isFinite(length) && length > 0 ? length : undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      progress.received += chunk.length;
      callback(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>),
    counter,
    createWriteStream(file, { mode: 0o600 }),
    { signal },
  );
  if (progress.total !== undefined && progress.received !== progress.total) {
    throw new Error(`download ended after ${progress.received} of ${progress.total} bytes`);
  }
}
