// Registers a `virtfleet api` listening on loopback with kube-apiserver's aggregator, for the
// local stack and the tests: the Namespace, an ExternalName Service `localhost` (why not
// Endpoints: src/devstack/controlplane.ts) and the APIService v1alpha1.subresources.virtfleet.io,
// whose caBundle is the CA that signed the serving cert. In a cluster, deploy/ has a ClusterIP
// Service in front of the Deployment instead.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { KubeClient, KubeObject, ResourceType } from '../runtime/kube-client.js';
import { API_SERVICE } from './pki.js';

export const API_SERVICE_NAME = 'v1alpha1.subresources.virtfleet.io';

const NAMESPACE: ResourceType = {
  kind: 'Namespace',
  group: '',
  version: 'v1',
  plural: 'namespaces',
  namespaced: false,
};
const SERVICE: ResourceType = { kind: 'Service', group: '', version: 'v1', plural: 'services', namespaced: true };
export const APISERVICE: ResourceType = {
  kind: 'APIService',
  group: 'apiregistration.k8s.io',
  version: 'v1',
  plural: 'apiservices',
  namespaced: false,
};

type ApiServiceObject = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
};

const apply = (client: KubeClient, type: ResourceType, object: KubeObject) =>
  client.patch(type, object.metadata?.namespace, object.metadata?.name ?? '', object, { patchType: 'apply' });

/** Points the APIService at 127.0.0.1:`port`; `caFile` signed the serving cert. */
export async function registerLocalApiServer(client: KubeClient, port: number, caFile: string): Promise<void> {
  const { namespace, name } = API_SERVICE;
  await apply(client, NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await apply(client, SERVICE, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'ExternalName', externalName: 'localhost', ports: [{ name: 'https', port, protocol: 'TCP' }] },
  });
  await apply(client, APISERVICE, {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: API_SERVICE_NAME },
    spec: {
      group: 'subresources.virtfleet.io',
      version: 'v1alpha1',
      groupPriorityMinimum: 1000,
      versionPriority: 15,
      service: { namespace, name, port },
      caBundle: readFileSync(caFile).toString('base64'),
    },
  });
}

/** Waits until the aggregator finds the API server available; rejects with its last condition. */
export async function waitForApiService(client: KubeClient, timeoutMs: number): Promise<void> {
  let last = 'not looked at yet';
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await delay(200)) {
    const service = await client.get<ApiServiceObject>(APISERVICE, undefined, API_SERVICE_NAME).catch(() => undefined);
    const available = service?.status?.conditions?.find((c) => c.type === 'Available');
    if (available?.status === 'True') return;
    if (available) last = `${available.reason ?? ''}: ${available.message ?? ''}`;
  }
  throw new Error(`APIService ${API_SERVICE_NAME} not Available within ${timeoutMs} ms (${last})`);
}
