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
  /** Default virtualmachines (WebSocket, get). */
  resource?: 'virtualmachines' | 'virtualmachineimages';
}

const KINDS = { virtualmachines: 'VirtualMachine', virtualmachineimages: 'VirtualMachineImage' } as const;
const resourceOf = (sub: SubresourceInfo) => sub.resource ?? 'virtualmachines';
const isUpload = (sub: SubresourceInfo) => resourceOf(sub) === 'virtualmachineimages';
const pathOf = (sub: SubresourceInfo) =>
  `/apis/${GROUP_VERSION}/namespaces/{namespace}/${resourceOf(sub)}/{name}/${sub.name}`;

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
      name: `${resourceOf(sub)}/${sub.name}`,
      singularName: '',
      namespaced: true,
      kind: KINDS[resourceOf(sub)],
      verbs: isUpload(sub) ? ['create'] : ['get'],
    })),
  };
}

function connectPath(sub: SubresourceInfo) {
  const kind = KINDS[resourceOf(sub)];
  const parameters = [
    { name: 'namespace', in: 'path', required: true, type: 'string', description: `namespace of the ${kind}` },
    { name: 'name', in: 'path', required: true, type: 'string', description: `name of the ${kind}` },
  ];
  if (isUpload(sub))
    return {
      parameters,
      post: {
        description: sub.description,
        operationId: 'uploadVirtualMachineImage',
        consumes: ['application/octet-stream'],
        produces: ['application/json'],
        tags: [GROUP_VERSION],
        responses: {
          '202': { description: 'Accepted' },
          '400': {},
          '403': {},
          '404': {},
          '409': {},
          '413': {},
          '415': {},
        },
      },
    };
  return {
    parameters,
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
  for (const sub of subresources) paths[pathOf(sub)] = connectPath(sub);
  return { swagger: '2.0', info: { title: 'virtfleet subresources', version: SUBRESOURCE_VERSION }, paths };
}

function openApiV3(subresources: SubresourceInfo[]) {
  const paths: Record<string, unknown> = {};
  for (const sub of subresources) {
    const v2 = connectPath(sub);
    const operation = 'post' in v2 ? v2.post! : v2.get!;
    paths[pathOf(sub)] = {
      parameters: v2.parameters.map(({ name, in: where, required, description }) => ({
        name,
        in: where,
        required,
        description,
        schema: { type: 'string' },
      })),
      [isUpload(sub) ? 'post' : 'get']: {
        description: sub.description,
        operationId: operation.operationId,
        tags: operation.tags,
        ...(isUpload(sub)
          ? {
              requestBody: {
                content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
              },
              responses: { '202': { description: 'Accepted' } },
            }
          : { responses: { '101': { description: 'Switching Protocols' } } }),
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
