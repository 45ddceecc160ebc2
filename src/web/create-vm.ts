// The Create-a-VM form's server side: the object the form made is checked exactly as
// `virtfleet validate` checks a file (src/api/validate.ts: the CRD schema with ajv, the CEL
// twins; same field paths and messages). When that finds a problem nothing is sent to the
// kube-apiserver. Otherwise a POST with dryRun=All as the person (admission, the CRD's CEL,
// RBAC), and with `create` the POST itself. The answer carries the YAML the form applies, as
// `kubectl get -o yaml` would show it with the API server's defaults, so people learn the
// GitOps form.
import { stringify as stringifyYaml } from 'yaml';
import { validateObject, withDefaults } from '../api/validate.js';
import { VIRTUAL_MACHINE } from '../controllers/resources.js';
import { resourcePath } from '../runtime/kube-client.js';
import { WebError } from './http.js';
import { kubeError, type UserKube } from './kube.js';
import type { FieldProblem } from './writes.js';

export interface CreateAnswer {
  created: boolean;
  /** The manifest the form applies (what was sent, defaults filled in). */
  yaml: string;
  problems: FieldProblem[];
  message?: string;
}

export async function createVm(
  kube: UserKube,
  token: string,
  namespace: string,
  body: Record<string, unknown>,
): Promise<CreateAnswer> {
  const object = body.object as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown } } | null;
  if (typeof object !== 'object' || object === null || Array.isArray(object))
    throw new WebError(400, 'object: the VirtualMachine the form made, as JSON');
  if (object.apiVersion !== 'virtfleet.io/v1alpha1' || object.kind !== 'VirtualMachine')
    throw new WebError(400, 'object: only a virtfleet.io/v1alpha1 VirtualMachine is created here');
  const problems: FieldProblem[] =
    object.metadata?.namespace === namespace
      ? []
      : [{ field: 'metadata.namespace', message: `must be ${namespace}, the namespace the form posts to` }];
  problems.push(...validateObject(object).map((p) => ({ field: p.path, message: p.message })));
  const yaml = stringifyYaml(problems.length === 0 ? withDefaults(object) : object);
  if (problems.length > 0) return { created: false, yaml, problems };
  const name = String((object.metadata as { name?: unknown }).name ?? '');
  const attempt = { verb: 'create', resource: 'virtualmachines', namespace };
  const post = (dryRun: boolean) =>
    kube.call(token, 'POST', resourcePath(VIRTUAL_MACHINE, namespace), {
      query: { fieldManager: 'virtfleet-web', fieldValidation: 'Strict', ...(dryRun ? { dryRun: 'All' } : {}) },
      body: object,
    });
  const dry = await post(true);
  if (dry.status !== 201 && dry.status !== 200) return refused(dry, attempt, yaml);
  if (body.create !== true)
    return { created: false, yaml, problems: [], message: 'the API server accepts it (dry run)' };
  const real = await post(false);
  if (real.status !== 201 && real.status !== 200) return refused(real, attempt, yaml);
  return { created: true, yaml, problems: [], message: `VirtualMachine ${name} created in ${namespace}` };
}

function refused(
  answer: { status: number; body: unknown },
  attempt: { verb: string; resource: string; namespace: string },
  yaml: string,
): CreateAnswer {
  if (answer.status === 401 || answer.status === 403 || answer.status >= 500) throw kubeError(answer, attempt);
  const body = answer.body as { message?: string; details?: { causes?: { field?: string; message?: string }[] } };
  const message = body?.message ?? `HTTP ${answer.status}`;
  const causes = (body?.details?.causes ?? []).map((c) => ({ field: c.field ?? '', message: c.message ?? '' }));
  return { created: false, yaml, message, problems: causes.length > 0 ? causes : [{ field: '', message }] };
}
