// The page's side of src/web: the session (who, and the CSRF token every write carries) and
// JSON calls. A failure keeps the server's words: a 403 reads "you may not <verb> <resource>".
import { createSignal } from 'solid-js';

export interface SessionInfo {
  user: { name: string; groups: string[] };
  csrfToken: string;
  expiresAt: string;
  idleMinutes: number;
}

export class ApiFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly apiMessage?: string,
  ) {
    super(message);
  }
}

const [session, setSession] = createSignal<SessionInfo | undefined>();
export { session };

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = session()?.csrfToken;
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const data = (await response.json().catch(() => ({}))) as { message?: string; apiMessage?: string };
  if (!response.ok) {
    // The session ended (expiry, logout elsewhere): back to the login page.
    if (response.status === 401 && path !== '/api/login') setSession(undefined);
    throw new ApiFailure(response.status, data.message ?? `HTTP ${response.status}`, data.apiMessage);
  }
  return data as T;
}

/**
 * Asks the server whether a session cookie is live; sets `session` accordingly. Only the
 * server's 401 means no session: a request that did not get through (the network changed, the
 * server restarting) is asked again, so a live session is not shown the login page.
 */
export async function loadSession(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      setSession(await call<SessionInfo>('GET', '/api/session'));
      return;
    } catch (error) {
      if (error instanceof ApiFailure || attempt >= 5) {
        setSession(undefined);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

export async function login(token: string): Promise<void> {
  setSession(await call<SessionInfo>('POST', '/api/login', { token }));
}

export async function logout(): Promise<void> {
  try {
    await call('POST', '/api/logout', {});
  } finally {
    setSession(undefined);
  }
}

const vmPath = (namespace: string, name: string) =>
  `/api/namespaces/${encodeURIComponent(namespace)}/virtualmachines/${encodeURIComponent(name)}`;

/** `to`: with migrate, the destination host (unset: the scheduler chooses). */
export function vmAction(
  namespace: string,
  name: string,
  action: string,
  to?: string,
): Promise<{ action: string; id: string; to?: string }> {
  return call('POST', `${vmPath(namespace, name)}/action`, { action, ...(to ? { to } : {}) });
}

export function deleteVm(namespace: string, name: string): Promise<{ deleted: true }> {
  return call('DELETE', vmPath(namespace, name));
}

export function vmYaml(namespace: string, name: string): Promise<{ yaml: string; resourceVersion: string }> {
  return call('GET', `${vmPath(namespace, name)}/yaml`);
}

export interface ApplyAnswer {
  applied: boolean;
  problems: { field: string; message: string }[];
  message?: string;
  resourceVersion?: string;
}

/** apply false: only the checks and the API server's dry run. `base`: the text as loaded, before the edit. */
export function applyVmYaml(
  namespace: string,
  name: string,
  yaml: string,
  base: string,
  apply: boolean,
): Promise<ApplyAnswer> {
  return call('POST', `${vmPath(namespace, name)}/yaml`, { yaml, base, apply });
}

export interface CreateAnswer {
  created: boolean;
  yaml: string;
  problems: { field: string; message: string }[];
  message?: string;
}

/** The form's VM: the validator, a dry-run create, and with `create` the create itself (src/web/create-vm.ts). */
export function createVmObject(namespace: string, object: unknown, create: boolean): Promise<CreateAnswer> {
  return call('POST', `/api/namespaces/${encodeURIComponent(namespace)}/virtualmachines`, { object, create });
}

export function setMaintenance(pool: string, host: string, maintenance: boolean): Promise<unknown> {
  return call('POST', `/api/hostpools/${encodeURIComponent(pool)}/hosts/${encodeURIComponent(host)}/maintenance`, {
    maintenance,
  });
}

export type KickstartView =
  | { ok: true; text: string; hash: string }
  | { ok: false; problems: { field: string; kind: string; message: string }[] };

export function kickstart(namespace: string, name: string): Promise<KickstartView> {
  return call(
    'GET',
    `/api/namespaces/${encodeURIComponent(namespace)}/installprofiles/${encodeURIComponent(name)}/kickstart`,
  );
}

/** An error as the Failure component shows it. */
export function failureOf(error: unknown): { code: number; message: string; apiMessage?: string | undefined } {
  const f = error instanceof ApiFailure ? error : new ApiFailure(0, String(error));
  return { code: f.code, message: f.message, apiMessage: f.apiMessage };
}

const accessCache = new Map<string, Promise<boolean>>();

/** May the person `verb` `resource` in `namespace` (a SelfSubjectAccessReview as them; cached per page load)? */
export function canI(verb: string, resource: string, namespace: string): Promise<boolean> {
  const key = `${verb}/${resource}/${namespace}`;
  let answer = accessCache.get(key);
  if (!answer) {
    const query = new URLSearchParams({ verb, resource, namespace });
    answer = call<{ allowed: boolean }>('GET', `/api/access?${query.toString()}`).then(
      (result) => result.allowed,
      () => false,
    );
    accessCache.set(key, answer);
  }
  return answer;
}

export function clearAccessCache(): void {
  accessCache.clear();
}
