// What a reconciler is given and may answer, after controller-runtime: done,
// retry with backoff (throw), done for good (TerminalError), or come back
// after a delay (requeueAfterMs). Time-based work is a requeue, never a sleep.
import type { Logger } from '../observability/logging.js';

export interface ReconcileContext {
  /** namespace/name, or name for cluster-scoped objects. */
  key: string;
  /** Unique per reconcile; on every log line of it. */
  reconcileId: string;
  logger: Logger;
  signal: AbortSignal;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface Reconciler {
  reconcile(context: ReconcileContext): Promise<ReconcileResult | void>;
}

/** A failure that retrying cannot fix (e.g. invalid input): logged, not retried. */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** A failure that should be retried after a given delay instead of the backoff. */
export class RequeueAfterError extends Error {
  constructor(
    message: string,
    readonly requeueAfterMs: number,
  ) {
    super(message);
    this.name = 'RequeueAfterError';
  }
}
