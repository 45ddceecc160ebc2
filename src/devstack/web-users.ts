// Two people for the web console of `make run`: ServiceAccounts bound to Kubernetes' own admin
// and view ClusterRoles across the cluster (virtfleet's roles aggregate into them; the local
// stack runs kube-controller-manager, which does the aggregation), each with a token from the
// TokenRequest API. The tokens are written beside the stack's state (0600) and printed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isConflict, type KubeClient, type KubeObject, type ResourceType } from '../runtime/kube-client.js';

export const WEB_USERS_NAMESPACE = 'virtfleet-console';
const TOKEN_SECONDS = 24 * 3600;

const NAMESPACE: ResourceType = {
  kind: 'Namespace',
  group: '',
  version: 'v1',
  plural: 'namespaces',
  namespaced: false,
};
const SERVICE_ACCOUNT: ResourceType = {
  kind: 'ServiceAccount',
  group: '',
  version: 'v1',
  plural: 'serviceaccounts',
  namespaced: true,
};
const CLUSTER_ROLE_BINDING: ResourceType = {
  kind: 'ClusterRoleBinding',
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'clusterrolebindings',
  namespaced: false,
};

export interface WebUserToken {
  role: 'admin' | 'view';
  user: string;
  token: string;
  file: string;
}

async function ensure(client: KubeClient, type: ResourceType, object: KubeObject): Promise<void> {
  try {
    await client.create(type, object);
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
}

const CLUSTER_ROLE: ResourceType = { ...CLUSTER_ROLE_BINDING, kind: 'ClusterRole', plural: 'clusterroles' };

/**
 * Waits until kube-controller-manager has folded virtfleet's roles into admin and view, so the
 * tokens printed can do what their roles say from the first login.
 */
async function aggregated(client: KubeClient, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const roles = await Promise.all(
      ['admin', 'view'].map((name) =>
        client.get<KubeObject & { rules?: { resources?: string[] }[] }>(CLUSTER_ROLE, undefined, name),
      ),
    );
    if (roles.every((role) => (role.rules ?? []).some((rule) => rule.resources?.includes('virtualmachines')))) return;
    if (Date.now() > deadline)
      throw new Error(
        'ClusterRoles admin and view did not get the virtfleet rules (is kube-controller-manager running?)',
      );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Creates (or keeps) the two ServiceAccounts and their bindings; returns a fresh token of each. */
export async function webUserTokens(client: KubeClient, stateDir: string): Promise<WebUserToken[]> {
  await aggregated(client);
  await ensure(client, NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: WEB_USERS_NAMESPACE } });
  const tokens: WebUserToken[] = [];
  for (const role of ['admin', 'view'] as const) {
    const name = `console-${role}`;
    await ensure(client, SERVICE_ACCOUNT, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: WEB_USERS_NAMESPACE },
    });
    await ensure(client, CLUSTER_ROLE_BINDING, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `virtfleet-console-${role}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name, namespace: WEB_USERS_NAMESPACE }],
    });
    const answer = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${WEB_USERS_NAMESPACE}/serviceaccounts/${name}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: TOKEN_SECONDS },
        },
      },
    );
    const file = join(stateDir, `web-${role}.token`);
    writeFileSync(file, `${answer.status.token}\n`, { mode: 0o600 });
    tokens.push({
      role,
      user: `system:serviceaccount:${WEB_USERS_NAMESPACE}:${name}`,
      token: answer.status.token,
      file,
    });
  }
  return tokens;
}
