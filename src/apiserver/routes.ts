// The paths `virtfleet api` serves, parsed and checked before anything else happens.
import { namespaceProblem, objectNameProblem } from '../runtime/kube-client.js';
import { SUBRESOURCE_GROUP, SUBRESOURCE_VERSION } from './authorization.js';
import { StatusError } from './responses.js';

export interface SubresourceRoute {
  /** virtualmachines or virtualmachineimages */
  resource: string;
  namespace: string;
  name: string;
  subresource: string;
}

const PREFIX = `/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/`;

const RESOURCES: readonly string[] = ['virtualmachines', 'virtualmachineimages'];

/** The subresource (of a VM or an image) a path names, undefined for any other path; a bad name is a 400. */
export function subresourceRoute(pathname: string): SubresourceRoute | undefined {
  if (!pathname.startsWith(PREFIX)) return undefined;
  const parts = pathname.slice(PREFIX.length).split('/');
  if (parts.length !== 4 || !RESOURCES.includes(parts[1] ?? '')) return undefined;
  const [namespace = '', resource = '', name = '', subresource = ''] = parts.map((part) => decodeURIComponent(part));
  const problem = namespaceProblem(namespace) ?? objectNameProblem(name);
  if (problem) throw new StatusError(400, 'BadRequest', `${pathname}: ${problem}`);
  return { resource, namespace, name, subresource };
}

/** A boolean query parameter as Kubernetes parses them: present and not "false" or "0". */
export function queryFlag(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  return value !== null && value !== 'false' && value !== '0';
}
