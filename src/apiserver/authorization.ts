// Authorization by SubjectAccessReview, asked for every request (no cache: a revoked binding
// takes effect at the next connection), as KubeVirt's virt-api does for its subresources. The
// verb is the one Kubernetes derives from the HTTP method: a WebSocket is opened with GET, so
// `get`, which is also the verb KubeVirt's roles grant on virtualmachineinstances/console and /vnc.
import type { KubeClient } from '../runtime/kube-client.js';
import type { UserInfo } from './authentication.js';
import { StatusError } from './responses.js';

export const SUBRESOURCE_GROUP = 'subresources.virtfleet.io';
export const SUBRESOURCE_VERSION = 'v1alpha1';

export interface ResourceAttributes {
  namespace: string;
  name: string;
  resource: string;
  subresource: string;
  verb: string;
}

interface SubjectAccessReview {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** The verb Kubernetes' request-info resolver gives a method on a named object. */
export function verbOf(method: string | undefined): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return (method ?? '').toLowerCase();
  }
}

export class Authorizer {
  constructor(private readonly client: KubeClient) {}

  /** Resolves when `user` may; throws a 403 StatusError (or 500 when the review fails) otherwise. */
  async authorize(user: UserInfo, attributes: ResourceAttributes): Promise<void> {
    let review: SubjectAccessReview;
    try {
      review = await this.client.request<SubjectAccessReview>(
        'POST',
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.name,
              groups: user.groups,
              extra: user.extra,
              ...(user.uid ? { uid: user.uid } : {}),
              resourceAttributes: { group: SUBRESOURCE_GROUP, version: SUBRESOURCE_VERSION, ...attributes },
            },
          },
        },
      );
    } catch (error) {
      throw new StatusError(
        500,
        'InternalError',
        `cannot check access (SubjectAccessReview failed: ${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (review.status?.allowed === true) return;
    const { verb, resource, subresource, name, namespace } = attributes;
    const why = review.status?.reason ? `: ${review.status.reason}` : '';
    throw new StatusError(
      403,
      'Forbidden',
      `${resource}.${SUBRESOURCE_GROUP} "${name}" is forbidden: User "${user.name}" cannot ${verb} resource ` +
        `"${resource}/${subresource}" in API group "${SUBRESOURCE_GROUP}" in the namespace "${namespace}"${why}`,
      { name, group: SUBRESOURCE_GROUP, kind: resource },
    );
  }
}
