// The one place every request's URL is made: a name or namespace that is not a valid Kubernetes
// name never reaches it (`.` is normalised away by URL handling, and a DELETE meant for one VM
// would hit the whole collection).
import { describe, expect, it } from '@jest/globals';
import { InvalidNameError, resourcePath, type ResourceType } from '../../src/runtime/kube-client.js';

const VM: ResourceType = {
  kind: 'VirtualMachine',
  group: 'virtfleet.io',
  version: 'v1alpha1',
  plural: 'virtualmachines',
  namespaced: true,
};
const POOL: ResourceType = {
  kind: 'HostPool',
  group: 'virtfleet.io',
  version: 'v1alpha1',
  plural: 'hostpools',
  namespaced: false,
};

describe('resourcePath', () => {
  it('builds item, status and collection paths for valid names', () => {
    expect(resourcePath(VM, 'team-a', 'web.1')).toBe(
      '/apis/virtfleet.io/v1alpha1/namespaces/team-a/virtualmachines/web.1',
    );
    expect(resourcePath(VM, 'team-a', 'web', 'status')).toBe(
      '/apis/virtfleet.io/v1alpha1/namespaces/team-a/virtualmachines/web/status',
    );
    expect(resourcePath(VM, 'team-a')).toBe('/apis/virtfleet.io/v1alpha1/namespaces/team-a/virtualmachines');
    expect(resourcePath(VM)).toBe('/apis/virtfleet.io/v1alpha1/virtualmachines');
    expect(resourcePath(POOL, undefined, 'lab')).toBe('/apis/virtfleet.io/v1alpha1/hostpools/lab');
  });

  it.each(['.', '..', '', 'a/b', 'a%2Fb', '%2e', 'Web', '-web', 'web-', 'a b', 'x'.repeat(254), 'web\n', 'wéb'])(
    'refuses the name %j before any URL is made',
    (name) => {
      const error = (() => {
        try {
          resourcePath(VM, 'team-a', name);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidNameError);
      expect((error as InvalidNameError).field).toBe('name');
      expect((error as Error).message).toContain(JSON.stringify(name));
    },
  );

  it.each(['.', '..', '', 'a/b', 'a.b', 'Team', 'x'.repeat(64)])(
    'refuses the namespace %j of an object',
    (namespace) => {
      expect(() => resourcePath(VM, namespace, 'web')).toThrow(InvalidNameError);
    },
  );

  it('refuses a bad namespace for a collection too, but an absent one means every namespace', () => {
    expect(() => resourcePath(VM, '..')).toThrow(/invalid namespace "\.\."/);
    expect(resourcePath(VM, '')).toBe('/apis/virtfleet.io/v1alpha1/virtualmachines');
  });
});
