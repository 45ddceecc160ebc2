// The roles for people (deploy/base/user-roles.yaml) on the real API server: for users bound
// to each role, `kubectl auth can-i` and a SubjectAccessReview (what `virtfleet api` asks for
// every console or VNC request) give the answers docs/access.md promises.
//
// Bound directly, and through Kubernetes' own admin, edit and view ClusterRoles. Aggregation
// into those is kube-controller-manager's clusterrole-aggregation controller; the integration
// control plane runs no kube-controller-manager, so this file runs that one controller (the
// real binary, nothing else enabled) against the shared API server while it checks aggregation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { controlPlaneBinaries } from '../../src/devstack/binaries.js';
import { Supervised } from '../../src/devstack/process.js';
import { kubeconfigPath, kubectl } from '../harness/kube.js';

const NS = 'roles-test';
const OTHER_NS = 'roles-test-other';
const ROLES = ['admin', 'edit', 'view'] as const;
type Role = (typeof ROLES)[number];

async function must(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function canI(user: string, ...args: string[]): Promise<boolean> {
  const result = await kubectl(['auth', 'can-i', '--as', user, ...args]);
  const answer = result.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${result.stderr}`);
  return answer === 'yes';
}

/** A SubjectAccessReview, as `virtfleet api` makes one for each console or VNC request. */
async function reviewSubresource(user: string, subresource: 'console' | 'vnc', namespace: string): Promise<boolean> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user,
      groups: ['system:authenticated'],
      resourceAttributes: {
        group: 'subresources.virtfleet.io',
        version: 'v1alpha1',
        resource: 'virtualmachines',
        subresource,
        verb: 'get',
        namespace,
        name: 'demo',
      },
    },
  };
  const out = await must(['create', '-o', 'json', '-f', '-'], JSON.stringify(review));
  return (JSON.parse(out) as { status: { allowed?: boolean } }).status.allowed === true;
}

async function bind(kind: 'RoleBinding' | 'ClusterRoleBinding', name: string, role: string, user: string) {
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind,
    metadata: { name, ...(kind === 'RoleBinding' ? { namespace: NS } : {}) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  };
  await must(['apply', '-f', '-'], JSON.stringify(binding));
}

/** What each role may do, in the namespace it is bound in. */
const EXPECTED: Record<Role, { write: boolean; read: boolean; stream: boolean }> = {
  admin: { write: true, read: true, stream: true },
  edit: { write: true, read: true, stream: true },
  view: { write: false, read: true, stream: false },
};

async function expectNamespacedAnswers(user: string, role: Role): Promise<void> {
  const want = EXPECTED[role];
  const answers = {
    'get vms': await canI(user, 'get', 'virtualmachines.virtfleet.io', '-n', NS),
    'watch vms': await canI(user, 'watch', 'virtualmachines.virtfleet.io', '-n', NS),
    'get vm status': await canI(user, 'get', 'virtualmachines.virtfleet.io', '--subresource=status', '-n', NS),
    'list installprofiles': await canI(user, 'list', 'installprofiles.virtfleet.io', '-n', NS),
    'create vms': await canI(user, 'create', 'virtualmachines.virtfleet.io', '-n', NS),
    'patch vms': await canI(user, 'patch', 'virtualmachines.virtfleet.io', '-n', NS),
    'delete vms': await canI(user, 'delete', 'virtualmachines.virtfleet.io', '-n', NS),
    'create installprofiles': await canI(user, 'create', 'installprofiles.virtfleet.io', '-n', NS),
    'list vmsnapshots': await canI(user, 'list', 'virtualmachinesnapshots.virtfleet.io', '-n', NS),
    'create vmsnapshots': await canI(user, 'create', 'virtualmachinesnapshots.virtfleet.io', '-n', NS),
    'create vmrestores': await canI(user, 'create', 'virtualmachinerestores.virtfleet.io', '-n', NS),
    'console (SubjectAccessReview)': await reviewSubresource(user, 'console', NS),
    'vnc (SubjectAccessReview)': await reviewSubresource(user, 'vnc', NS),
  };
  expect(answers).toEqual({
    'get vms': want.read,
    'watch vms': want.read,
    'get vm status': want.read,
    'list installprofiles': want.read,
    'create vms': want.write,
    'patch vms': want.write,
    'delete vms': want.write,
    'create installprofiles': want.write,
    'list vmsnapshots': want.read,
    'create vmsnapshots': want.write,
    'create vmrestores': want.write,
    'console (SubjectAccessReview)': want.stream,
    'vnc (SubjectAccessReview)': want.stream,
  });
  // Never beyond what the people's roles are for, whichever role.
  const never = {
    'patch vm status': await canI(user, 'patch', 'virtualmachines.virtfleet.io', '--subresource=status', '-n', NS),
    'anything in another namespace': await canI(user, 'get', 'virtualmachines.virtfleet.io', '-n', OTHER_NS),
    'console in another namespace': await reviewSubresource(user, 'console', OTHER_NS),
    'create hostpools': await canI(user, 'create', 'hostpools.virtfleet.io'),
    'delete hostpools': await canI(user, 'delete', 'hostpools.virtfleet.io'),
    // A RoleBinding cannot grant a cluster-scoped read.
    'list hostpools': await canI(user, 'list', 'hostpools.virtfleet.io'),
  };
  expect(Object.entries(never).filter(([, allowed]) => allowed)).toEqual([]);
}

beforeAll(async () => {
  for (const ns of [NS, OTHER_NS]) {
    const created = await kubectl(['create', 'namespace', ns]);
    if (created.code !== 0 && !created.stderr.includes('AlreadyExists')) throw new Error(created.stderr);
  }
  await must(['apply', '-f', 'deploy/base/user-roles.yaml']);
});

describe('the virtfleet roles bound directly', () => {
  beforeAll(async () => {
    for (const role of ROLES) await bind('RoleBinding', `direct-${role}`, `virtfleet-${role}`, `direct-${role}`);
  });

  it.each(ROLES)('give virtfleet-%s what docs/access.md says, in its namespace only', async (role) => {
    await expectNamespacedAnswers(`direct-${role}`, role);
  });

  it('lets a cluster-wide binding read HostPools, never change them', async () => {
    await bind('ClusterRoleBinding', 'roles-test-pool-reader', 'virtfleet-view', 'pool-reader');
    expect(await canI('pool-reader', 'list', 'hostpools.virtfleet.io')).toBe(true);
    expect(await canI('pool-reader', 'get', 'hostpools.virtfleet.io', '--subresource=status')).toBe(true);
    expect(await canI('pool-reader', 'patch', 'hostpools.virtfleet.io')).toBe(false);
    expect(await reviewSubresource('pool-reader', 'console', NS)).toBe(false);
  });

  it('gives a user bound to none of them nothing', async () => {
    expect(await canI('nobody', 'get', 'virtualmachines.virtfleet.io', '-n', NS)).toBe(false);
    expect(await reviewSubresource('nobody', 'console', NS)).toBe(false);
  });

  // `kubectl auth can-i` sends a SelfSubjectAccessReview as the user. Without `virtfleet api`
  // registered, discovery does not know group subresources.virtfleet.io and kubectl then puts
  // the whole "virtualmachines.subresources.virtfleet.io" into the resource field, so here the
  // same review is sent as kubectl would send it once the group is served.
  it('a SelfSubjectAccessReview as the user agrees with the SubjectAccessReview on console and vnc', async () => {
    for (const role of ROLES) {
      const user = `direct-${role}`;
      for (const subresource of ['console', 'vnc'] as const) {
        const review = {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              group: 'subresources.virtfleet.io',
              resource: 'virtualmachines',
              subresource,
              verb: 'get',
              namespace: NS,
            },
          },
        };
        const out = await must(
          ['create', '--as', user, '--validate=false', '-o', 'json', '-f', '-'],
          JSON.stringify(review),
        );
        const allowed = (JSON.parse(out) as { status: { allowed?: boolean } }).status.allowed === true;
        expect([role, subresource, allowed]).toEqual([role, subresource, EXPECTED[role].stream]);
        expect(await reviewSubresource(user, subresource, NS)).toBe(allowed);
      }
    }
  });
});

describe("aggregated into Kubernetes' admin, edit and view", () => {
  let aggregator: Supervised | undefined;
  let logDir = '';

  beforeAll(async () => {
    for (const role of ROLES) await bind('RoleBinding', `builtin-${role}`, role, `builtin-${role}`);
    // Nothing else in this tier aggregates: what the tests below see is that controller's doing.
    expect(await canI('builtin-edit', 'create', 'virtualmachines.virtfleet.io', '-n', NS)).toBe(false);
    logDir = mkdtempSync(join(tmpdir(), 'virtfleet-roles-'));
    aggregator = new Supervised({
      name: 'kube-controller-manager (clusterrole-aggregation only)',
      command: controlPlaneBinaries().kubeControllerManager,
      args: [
        `--kubeconfig=${kubeconfigPath()}`,
        '--controllers=clusterrole-aggregation-controller',
        '--use-service-account-credentials=false',
        '--leader-elect=false',
        '--secure-port=0',
        '--v=1',
      ],
      logFile: join(logDir, 'kube-controller-manager.log'),
    });
  });

  afterAll(async () => {
    await aggregator?.stop();
    rmSync(logDir, { recursive: true, force: true });
  });

  it("folds each virtfleet role's rules into the Kubernetes role", async () => {
    const deadline = Date.now() + 60_000;
    const aggregated = async (role: Role): Promise<boolean> => {
      const out = await must(['get', 'clusterrole', role, '-o', 'json']);
      const rules = (JSON.parse(out) as { rules?: { apiGroups?: string[]; resources?: string[] }[] }).rules ?? [];
      return rules.some(
        (rule) => rule.apiGroups?.includes('virtfleet.io') && rule.resources?.includes('virtualmachines'),
      );
    };
    for (const role of ROLES) {
      while (!(await aggregated(role))) {
        if (!aggregator?.running) throw aggregator?.failure('exited') ?? new Error('no aggregator');
        if (Date.now() > deadline)
          throw aggregator.failure(`had not aggregated virtfleet-${role} into ${role} in 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  });

  it.each(ROLES)('gives a user bound to Kubernetes %s the virtfleet answers of that role', async (role) => {
    await expectNamespacedAnswers(`builtin-${role}`, role);
  });
});
