// Discovery and OpenAPI of group subresources.virtfleet.io, as kube-apiserver's aggregator and
// kubectl ask for them: the group list, the group, the version's resource list (subresources of
// virtualmachines only, as KubeVirt's subresources.kubevirt.io lists virtualmachineinstances/*),
// and OpenAPI v2 and v3 documents describing the connect paths. Open to any front-proxied
// request, as system:discovery is to every authenticated user.
import { createHash } from 'node:crypto';
import { SUBRESOURCE_GROUP, SUBRESOURCE_VERSION } from './authorization.js';

const GROUP_VERSION = `${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`;

export interface SubresourceInfo {
  /** e.g. console */
  name: string;
  description: string;
}

function groupDoc() {
  const version = { groupVersion: GROUP_VERSION, version: SUBRESOURCE_VERSION };
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: SUBRESOURCE_GROUP,
    versions: [version],
    preferredVersion: version,
  };
}

function resourceList(subresources: SubresourceInfo[]) {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: subresources.map((sub) => ({
      name: `virtualmachines/${sub.name}`,
      singularName: '',
      namespaced: true,
      kind: 'VirtualMachine',
      verbs: ['get'],
    })),
  };
}

function connectPath(sub: SubresourceInfo) {
  return {
    parameters: [
      { name: 'namespace', in: 'path', required: true, type: 'string', description: 'namespace of the VirtualMachine' },
      { name: 'name', in: 'path', required: true, type: 'string', description: 'name of the VirtualMachine' },
    ],
    get: {
      description: sub.description,
      operationId: `connectVirtualMachine${sub.name[0]!.toUpperCase()}${sub.name.slice(1)}`,
      schemes: ['wss'],
      produces: ['*/*'],
      tags: [GROUP_VERSION],
      responses: { '101': { description: 'Switching Protocols' }, '401': {}, '403': {}, '404': {}, '409': {} },
    },
  };
}

function openApiV2(subresources: SubresourceInfo[]) {
  const paths: Record<string, unknown> = {};
  for (const sub of subresources)
    paths[`/apis/${GROUP_VERSION}/namespaces/{namespace}/virtualmachines/{name}/${sub.name}`] = connectPath(sub);
  return { swagger: '2.0', info: { title: 'virtfleet subresources', version: SUBRESOURCE_VERSION }, paths };
}

function openApiV3(subresources: SubresourceInfo[]) {
  const paths: Record<string, unknown> = {};
  for (const sub of subresources) {
    const v2 = connectPath(sub);
    paths[`/apis/${GROUP_VERSION}/namespaces/{namespace}/virtualmachines/{name}/${sub.name}`] = {
      parameters: v2.parameters.map(({ name, in: where, required, description }) => ({
        name,
        in: where,
        required,
        description,
        schema: { type: 'string' },
      })),
      get: {
        description: sub.description,
        operationId: v2.get.operationId,
        tags: v2.get.tags,
        responses: { '101': { description: 'Switching Protocols' } },
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'virtfleet subresources', version: SUBRESOURCE_VERSION }, paths };
}

/** The JSON documents by path, computed once. */
export function discoveryDocuments(subresources: SubresourceInfo[]): Map<string, unknown> {
  const v3 = openApiV3(subresources);
  const hash = createHash('sha256').update(JSON.stringify(v3)).digest('hex').slice(0, 32).toUpperCase();
  const v3Path = `/openapi/v3/apis/${GROUP_VERSION}`;
  return new Map<string, unknown>([
    ['/apis', { kind: 'APIGroupList', apiVersion: 'v1', groups: [groupDoc()] }],
    [`/apis/${SUBRESOURCE_GROUP}`, groupDoc()],
    [`/apis/${GROUP_VERSION}`, resourceList(subresources)],
    ['/openapi/v2', openApiV2(subresources)],
    ['/openapi/v3', { paths: { [`apis/${GROUP_VERSION}`]: { serverRelativeURL: `${v3Path}?hash=${hash}` } } }],
    [v3Path, v3],
  ]);
}
