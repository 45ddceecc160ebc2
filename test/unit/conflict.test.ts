import { describe, expect, it } from '@jest/globals';
import { retryOnConflict } from '../../src/runtime/conflict.js';
import { ApiError } from '../../src/runtime/kube-client.js';

describe('retryOnConflict', () => {
  it('retries a write that conflicts, with a fresh attempt each time', async () => {
    let calls = 0;
    const result = await retryOnConflict(async () => {
      calls++;
      if (calls < 3) throw new ApiError(409, 'Conflict', 'the object has been modified');
      return 'written';
    });
    expect({ result, calls }).toEqual({ result: 'written', calls: 3 });
  });

  it('gives up after the last attempt and passes other errors through at once', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(
        async () => {
          calls++;
          throw new ApiError(409, 'Conflict', 'again');
        },
        { attempts: 2 },
      ),
    ).rejects.toThrow('again');
    expect(calls).toBe(2);
    await expect(
      retryOnConflict(async () => {
        throw new ApiError(403, 'Forbidden', 'no');
      }),
    ).rejects.toThrow('no');
  });
});
