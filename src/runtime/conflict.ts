// Optimistic concurrency: a write based on a stale read fails with 409
// Conflict; read again and retry a few times before giving the error to the
// work queue's backoff.
import { isConflict } from './kube-client.js';

export async function retryOnConflict<T>(attempt: () => Promise<T>, { attempts = 5 } = {}): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isConflict(error) || i >= attempts) throw error;
    }
  }
}
