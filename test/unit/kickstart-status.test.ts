// The InstallProfile status a render result stands for: Valid with field-level messages, the
// sha256 of the file while it renders, observedGeneration; unchanged results give equal status
// (so nothing is written), and the reason says what to fix first.
import { describe, expect, it } from '@jest/globals';
import { problemsMessage, profileStatus, secretLookup } from '../../src/controllers/installprofile.js';
import type { ProfileRender } from '../../src/provisioning/profile.js';
import { ApiError, type KubeClient } from '../../src/runtime/kube-client.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T01:00:00Z');
const RENDERED: ProfileRender = { ok: true, text: 'text\npoweroff\n', hash: 'sha256:abc', secrets: [] };

describe('profileStatus', () => {
  it('is Valid=True and Ready=True with the hash and the generation when the profile renders', () => {
    const valid = {
      type: 'Valid',
      status: 'True',
      reason: 'Rendered',
      message: 'the profile and its Secrets render to a Kickstart file of 2 lines',
      observedGeneration: 3,
      lastTransitionTime: '2026-01-01T00:00:00Z',
    };
    expect(profileStatus(undefined, 3, RENDERED, T0)).toEqual({
      conditions: [valid, { ...valid, type: 'Ready' }],
      renderedHash: 'sha256:abc',
      observedGeneration: 3,
    });
  });

  it('is equal to itself on the next reconcile: the transition time stays, nothing to write', () => {
    const first = profileStatus(undefined, 3, RENDERED, T0);
    expect(profileStatus(first, 3, RENDERED, T1)).toEqual(first);
  });

  it('is Valid=False and Ready=False, Stalled, with one `field: message` per problem, and no hash, when it does not', () => {
    const valid = profileStatus(undefined, 3, RENDERED, T0);
    const status = profileStatus(
      valid,
      4,
      {
        ok: false,
        problems: [
          { path: 'spec.packages[3]', kind: 'spec', message: '"a b" is not a package' },
          { path: 'spec.rootPassword.secretKeyRef', kind: 'not-found', message: 'Secret ns/pw does not exist' },
        ],
      },
      T1,
    );
    const invalid = {
      type: 'Valid',
      status: 'False',
      reason: 'InvalidSpec',
      message: 'spec.packages[3]: "a b" is not a package; spec.rootPassword.secretKeyRef: Secret ns/pw does not exist',
      observedGeneration: 4,
      lastTransitionTime: '2026-01-01T01:00:00Z',
    };
    expect(status).toEqual({
      conditions: [
        invalid,
        { ...invalid, type: 'Ready' },
        { ...invalid, type: 'Stalled', status: 'True', message: `Valid: ${invalid.message}` },
      ],
      observedGeneration: 4,
    });
  });

  it('is Reconciling, not Stalled, while a Secret is not found (it is looked for again); neither once valid', () => {
    const missing = profileStatus(
      undefined,
      1,
      {
        ok: false,
        problems: [
          { path: 'spec.rootPassword.secretKeyRef', kind: 'not-found', message: 'Secret ns/pw does not exist' },
        ],
      },
      T0,
    );
    expect(missing.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Valid', 'False', 'SecretNotFound'],
      ['Ready', 'False', 'SecretNotFound'],
      ['Reconciling', 'True', 'SecretNotFound'],
    ]);
    expect(profileStatus(missing, 1, RENDERED, T1).conditions!.map((c) => [c.type, c.status])).toEqual([
      ['Valid', 'True'],
      ['Ready', 'True'],
    ]);
  });

  it('names the Secret problem as the reason when the spec itself is fine', () => {
    const reason = (kinds: Array<'not-found' | 'forbidden' | 'invalid'>) =>
      profileStatus(undefined, 1, { ok: false, problems: kinds.map((kind) => ({ path: 'p', kind, message: 'm' })) })
        .conditions![0]!.reason;
    expect(reason(['invalid', 'not-found'])).toBe('SecretNotFound');
    expect(reason(['invalid', 'forbidden'])).toBe('SecretForbidden');
    expect(reason(['invalid'])).toBe('InvalidSecret');
  });

  it('keeps conditions of other types', () => {
    const previous = {
      conditions: [
        {
          type: 'InUse',
          status: 'True' as const,
          reason: 'R',
          message: 'm',
          lastTransitionTime: '2025-01-01T00:00:00Z',
        },
      ],
    };
    expect(profileStatus(previous, 1, RENDERED, T0).conditions!.map((c) => c.type)).toEqual([
      'InUse',
      'Valid',
      'Ready',
    ]);
  });
});

describe('problemsMessage', () => {
  it('cuts a long list and counts the rest', () => {
    const problems = Array.from({ length: 500 }, (_, i) => ({
      path: `spec.packages[${i}]`,
      kind: 'spec' as const,
      message: `"bad package ${i}" is not a package`,
    }));
    const message = problemsMessage(problems);
    expect(message.length).toBeLessThanOrEqual(4096 + 40);
    expect(message).toMatch(/^spec\.packages\[0\]: /);
    expect(message).toMatch(/; and \d+ more problems$/);
  });
});

describe('secretLookup', () => {
  const failing = (status: number) =>
    ({ get: async () => Promise.reject(new ApiError(status, 'x', `HTTP ${status}`)) }) as unknown as KubeClient;

  it('answers not-found and forbidden (saying how to grant the controller access), and throws anything else for a retry', async () => {
    expect(await secretLookup(failing(404), 'team-a')('pw')).toEqual({ status: 'not-found' });
    expect(await secretLookup(failing(403), 'team-a')('pw')).toEqual({
      status: 'forbidden',
      message: expect.stringContaining(
        'kubectl create rolebinding virtfleet-secrets -n team-a --clusterrole=virtfleet-secret-reader --serviceaccount=virtfleet-system:virtfleet-controller',
      ),
    });
    await expect(secretLookup(failing(500), 'team-a')('pw')).rejects.toThrow('HTTP 500');
  });

  it('reads the Secret of the namespace by name', async () => {
    const calls: unknown[][] = [];
    const client = {
      get: async (...args: unknown[]) => (calls.push(args), { metadata: { name: 'pw' }, data: {} }),
    } as unknown as KubeClient;
    expect(await secretLookup(client, 'team-a')('pw')).toEqual({
      status: 'found',
      secret: { metadata: { name: 'pw' }, data: {} },
    });
    expect(calls).toEqual([[expect.objectContaining({ kind: 'Secret', plural: 'secrets' }), 'team-a', 'pw']]);
  });
});
