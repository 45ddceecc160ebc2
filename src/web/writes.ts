// The writes the console's pages make, each as the person (their token), so RBAC decides: a VM
// action as `virtfleet vm <action>` asks it (the action annotations), a VM's deletion, a host's
// maintenance flag in its HostPool, and a VM's edited YAML, checked by a server-side dry-run
// before it is applied.
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { validateObject } from '../api/validate.js';
import {
  ACTION_ANNOTATION,
  ACTION_ID_ANNOTATION,
  MIGRATE_TO_ANNOTATION,
  VM_ACTIONS,
} from '../controllers/vm-actions.js';
import { HOST_POOL, VIRTUAL_MACHINE } from '../controllers/resources.js';
import { namespaceProblem, resourcePath } from '../runtime/kube-client.js';
import { WebError } from './http.js';
import { kubeError, type KubeAnswer, type UserKube } from './kube.js';

/** What the pages may ask a VM to do: every declarative action of src/controllers/vm-actions.ts. */
export const WEB_ACTIONS: readonly string[] = VM_ACTIONS;
const FIELD_MANAGER = { fieldManager: 'virtfleet-web' };

export function checkName(field: string, value: string, problem: (value: string) => string | undefined): void {
  const why = problem(value);
  if (why) throw new WebError(400, `${field}: ${JSON.stringify(value.slice(0, 80))} ${why}`);
}

/** The action annotations, patched as the person; migrate sets or clears its target every time, as the CLI does. */
export async function vmAction(
  kube: UserKube,
  token: string,
  target: { namespace: string; name: string },
  body: Record<string, unknown>,
): Promise<{ action: string; id: string; to?: string }> {
  const { namespace, name } = target;
  const action = body.action;
  if (typeof action !== 'string' || !WEB_ACTIONS.includes(action))
    throw new WebError(400, `action: one of ${WEB_ACTIONS.join(', ')}`);
  const to = body.to;
  if (to !== undefined && (action !== 'migrate' || typeof to !== 'string'))
    throw new WebError(400, "to: only with action migrate, a host name of the VM's HostPool");
  if (typeof to === 'string') checkName('to', to, namespaceProblem); // host names are DNS labels too
  const id = `${new Date().toISOString()}-${randomBytes(3).toString('hex')}`;
  const migrateTo = action === 'migrate' ? { [MIGRATE_TO_ANNOTATION]: typeof to === 'string' ? to : null } : {};
  const answer = await kube.call(token, 'PATCH', resourcePath(VIRTUAL_MACHINE, namespace, name), {
    query: FIELD_MANAGER,
    contentType: 'application/merge-patch+json',
    body: { metadata: { annotations: { [ACTION_ANNOTATION]: action, [ACTION_ID_ANNOTATION]: id, ...migrateTo } } },
  });
  if (answer.status !== 200) throw kubeError(answer, { verb: 'patch', resource: 'virtualmachines', namespace, name });
  return { action, id, ...(typeof to === 'string' ? { to } : {}) };
}

/** Deletes the VM as `virtfleet vm delete` does (the controller shuts it down and removes its domain). */
export async function deleteVm(
  kube: UserKube,
  token: string,
  target: { namespace: string; name: string },
): Promise<{ deleted: true }> {
  const { namespace, name } = target;
  const answer = await kube.call(token, 'DELETE', resourcePath(VIRTUAL_MACHINE, namespace, name));
  if (answer.status !== 200 && answer.status !== 202)
    throw kubeError(answer, { verb: 'delete', resource: 'virtualmachines', namespace, name });
  return { deleted: true };
}

/**
 * spec.hosts[i].maintenance of one host, as a JSON patch that first tests the index still holds
 * that host: a list edited meanwhile makes the patch fail (422) instead of flagging another host.
 */
export async function setMaintenance(
  kube: UserKube,
  token: string,
  target: { pool: string; host: string },
  body: Record<string, unknown>,
): Promise<{ pool: string; host: string; maintenance: boolean }> {
  const { pool, host } = target;
  if (typeof body.maintenance !== 'boolean') throw new WebError(400, 'maintenance: true or false');
  const attempt = { verb: 'patch', resource: 'hostpools', namespace: '', name: pool };
  const current = await kube.call(token, 'GET', resourcePath(HOST_POOL, undefined, pool));
  if (current.status !== 200) throw kubeError(current, { ...attempt, verb: 'get' });
  const hosts = ((current.body as { spec?: { hosts?: { name?: string }[] } }).spec?.hosts ?? []).map((h) => h.name);
  const index = hosts.indexOf(host);
  if (index < 0) throw new WebError(404, `host ${host} is not in HostPool ${pool} (hosts: ${hosts.join(', ')})`);
  const answer = await kube.call(token, 'PATCH', resourcePath(HOST_POOL, undefined, pool), {
    query: FIELD_MANAGER,
    contentType: 'application/json-patch+json',
    body: [
      { op: 'test', path: `/spec/hosts/${index}/name`, value: host },
      { op: 'add', path: `/spec/hosts/${index}/maintenance`, value: body.maintenance },
    ],
  });
  if (answer.status === 422 && /test operation/i.test(messageOf(answer)))
    throw new WebError(409, `HostPool ${pool}'s hosts changed meanwhile: look again and retry`);
  if (answer.status !== 200) throw kubeError(answer, attempt);
  return { pool, host, maintenance: body.maintenance };
}

/** The VM as the person edits it: spec and metadata without what the API server keeps for itself. */
export async function vmYaml(
  kube: UserKube,
  token: string,
  target: { namespace: string; name: string },
): Promise<{ yaml: string; resourceVersion: string }> {
  const { namespace, name } = target;
  const answer = await kube.call(token, 'GET', resourcePath(VIRTUAL_MACHINE, namespace, name));
  if (answer.status !== 200) throw kubeError(answer, { verb: 'get', resource: 'virtualmachines', namespace, name });
  const object = answer.body as { metadata: Record<string, unknown>; status?: unknown };
  const { managedFields: _managed, ...metadata } = object.metadata;
  const { status: _status, ...editable } = { ...object, metadata };
  return { yaml: stringifyYaml(editable), resourceVersion: String(metadata.resourceVersion ?? '') };
}

export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * The edited YAML: the same checks as `virtfleet validate` (field paths and messages), then a
 * PUT with dryRun=All (admission, CEL, the whole API server), and only when `apply` is set and
 * both passed, the PUT itself. The resourceVersion in the YAML guards against a lost update
 * (see rebase for the controller's status writes).
 */
export async function applyVmYaml(
  kube: UserKube,
  token: string,
  target: { namespace: string; name: string },
  body: Record<string, unknown>,
): Promise<{ applied: boolean; problems: FieldProblem[]; message?: string; resourceVersion?: string }> {
  const { namespace, name } = target;
  if (typeof body.yaml !== 'string') throw new WebError(400, 'yaml: the edited VirtualMachine as YAML text');
  let object: unknown;
  try {
    object = parseYaml(body.yaml, { maxAliasCount: 0 });
  } catch (error) {
    return { applied: false, problems: [{ field: '', message: `not YAML: ${(error as Error).message}` }] };
  }
  const metadata = (object as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const moved: FieldProblem[] = [];
  if (metadata?.name !== name)
    moved.push({ field: 'metadata.name', message: `must stay ${name}: create a new VM instead` });
  if (metadata?.namespace !== namespace) moved.push({ field: 'metadata.namespace', message: `must stay ${namespace}` });
  const problems = [...moved, ...validateObject(object).map((p) => ({ field: p.path, message: p.message }))];
  if (problems.length > 0) return { applied: false, problems };
  const attempt = { verb: 'update', resource: 'virtualmachines', namespace, name };
  if (typeof body.base === 'string') await rebase(kube, token, attempt, object as Editable, body.base);
  const put = (dryRun: boolean) =>
    kube.call(token, 'PUT', resourcePath(VIRTUAL_MACHINE, namespace, name), {
      query: { ...FIELD_MANAGER, fieldValidation: 'Strict', ...(dryRun ? { dryRun: 'All' } : {}) },
      body: object,
    });
  const dry = await put(true);
  if (dry.status !== 200) return refusal(dry, attempt);
  if (body.apply !== true) return { applied: false, problems: [], message: 'the API server accepts it (dry run)' };
  const real = await put(false);
  if (real.status !== 200) return refusal(real, attempt);
  const version = (real.body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
  return { applied: true, problems: [], message: 'applied', ...(version ? { resourceVersion: version } : {}) };
}

interface Editable {
  metadata: { resourceVersion?: string; labels?: unknown; annotations?: unknown };
  spec?: unknown;
}

/** What people edit: a change by someone else to any of it since the text was loaded is a conflict. */
const edited = (object: Editable) => [object.spec, object.metadata.labels ?? {}, object.metadata.annotations ?? {}];

/**
 * The controller writes status all the time, and every status write moves the resourceVersion:
 * a text loaded a minute ago would always conflict. So when what people edit (spec, labels,
 * annotations) is the same now as in the text the editor loaded (`base`), the edit goes on top
 * of the current version; otherwise the text keeps its own and the API server's conflict says
 * someone else changed the VM.
 */
async function rebase(
  kube: UserKube,
  token: string,
  attempt: { verb: string; resource: string; namespace: string; name: string },
  object: Editable,
  base: string,
): Promise<void> {
  let loaded: Editable;
  try {
    loaded = parseYaml(base, { maxAliasCount: 0 }) as Editable;
  } catch {
    return;
  }
  if (!loaded?.metadata) return;
  const answer = await kube.call(token, 'GET', resourcePath(VIRTUAL_MACHINE, attempt.namespace, attempt.name));
  if (answer.status !== 200) throw kubeError(answer, { ...attempt, verb: 'get' });
  const current = answer.body as Editable;
  if (
    loaded.metadata.resourceVersion === object.metadata.resourceVersion &&
    isDeepStrictEqual(edited(loaded), edited(current))
  )
    object.metadata.resourceVersion = current.metadata.resourceVersion;
}

/** A refused PUT: a 403 or 401 is an error to show; an invalid object's causes become field problems. */
function refusal(
  answer: KubeAnswer,
  attempt: { verb: string; resource: string; namespace: string; name: string },
): { applied: false; problems: FieldProblem[]; message: string } {
  if (answer.status === 401 || answer.status === 403 || answer.status >= 500) throw kubeError(answer, attempt);
  const causes =
    (answer.body as { details?: { causes?: { field?: string; message?: string }[] } }).details?.causes ?? [];
  const message = messageOf(answer);
  const problems = causes.map((cause) => ({ field: cause.field ?? '', message: cause.message ?? '' }));
  // A refusal without causes (a conflict: the object changed since it was loaded) is one problem of the document.
  return { applied: false, message, problems: problems.length > 0 ? problems : [{ field: '', message }] };
}

function messageOf(answer: KubeAnswer): string {
  return (answer.body as { message?: string } | undefined)?.message ?? `HTTP ${answer.status}`;
}
