// Hosts that need credentials, from Secrets in the controller's namespace: libvirt's test driver
// asks for a username and password when its definition file has <auth>, and the controller
// answers through the binding's auth callback with what the Secret holds. A missing Secret, a
// Secret in another namespace and a wrong password each leave the host NotReady with a reason
// that says so, and no secret value reaches status, Events or logs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SECRET } from '../../../src/controllers/host-credentials.js';
import { ControllerBench, condition, isRunning, type HostDecl } from './fixtures.js';

const PASSWORD = 's3cret "quoted" <pw> & more';
const WRONG = 'not-the-password-42';
const LOGIN = { username: 'virtadmin', password: PASSWORD };

const bench = new ControllerBench('vm-creds');

/** A host that asks for LOGIN, with credentialsSecretRef to `secret` (in `namespace`, default the test's). */
function authHost(name: string, secret: string, namespace?: string): HostDecl {
  return {
    name,
    cpus: 4,
    memoryGiB: 4,
    hypervisor: 'kvm',
    auth: LOGIN,
    credentialsSecretRef: { name: secret, namespace: namespace ?? bench.namespace },
  };
}

function secret(name: string, data: Record<string, string>) {
  return bench.kube.create(SECRET, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: bench.namespace },
    type: 'kubernetes.io/basic-auth',
    stringData: data,
  } as never);
}

function hostStatus(pool: string, name: string) {
  return bench.pool(pool)?.status?.hosts?.find((h) => h.name === name);
}

beforeAll(() => bench.start());
afterAll(() => bench.close());

describe('host credentials from Secrets', () => {
  it('connects with the username and password of the Secret and runs a VM there', async () => {
    await secret('host-login', LOGIN);
    const host = authHost('auth-ok', 'host-login');
    const pool = await bench.createPool('creds', [host]);
    const ready = await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'auth-ok ready');
    expect(ready.status?.hosts?.[0]).toMatchObject({ name: 'auth-ok', ready: true, hypervisor: 'kvm' });
    await bench.createVm('behind-auth', pool);
    const vm = await bench.untilVm('behind-auth', isRunning, 'Running');
    expect(vm.status?.host).toBe('auth-ok');
    expect((await bench.domains(host)).map((d) => d.uuid)).toEqual([vm.metadata.uid]);
  });

  it('waits for a missing Secret with CredentialsNotFound, and connects once it exists', async () => {
    const pool = await bench.createPool('creds-later', [authHost('auth-later', 'later-login')]);
    const waiting = await bench.untilPool(
      pool,
      () => hostStatus(pool, 'auth-later')?.reason === 'CredentialsNotFound',
      'CredentialsNotFound',
    );
    expect(hostStatus(pool, 'auth-later')?.message).toBe(
      `Secret ${bench.namespace}/later-login (credentialsSecretRef) does not exist`,
    );
    expect(condition(waiting, 'Degraded')?.message).toMatch(/auth-later/);
    await secret('later-login', LOGIN);
    await bench.untilPool(pool, (p) => p.status?.readyHosts === 1, 'auth-later ready once the Secret exists');
  });

  it("refuses a Secret outside the controller's namespace with a condition that says where it must be", async () => {
    const pool = await bench.createPool('creds-elsewhere', [authHost('auth-elsewhere', 'host-login', 'kube-system')]);
    const refused = await bench.untilPool(
      pool,
      () => hostStatus(pool, 'auth-elsewhere')?.reason === 'CredentialsNamespaceNotAllowed',
      'CredentialsNamespaceNotAllowed',
    );
    expect(hostStatus(pool, 'auth-elsewhere')?.message).toContain(
      `must be in the controller's namespace ${bench.namespace}`,
    );
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(refused, 'Degraded')?.message).toMatch(/auth-elsewhere/);
  });

  it('reports a wrong password as an authentication failure, without the password anywhere', async () => {
    await secret('wrong-login', { username: LOGIN.username, password: WRONG });
    const pool = await bench.createPool('creds-wrong', [authHost('auth-wrong', 'wrong-login')]);
    await bench.untilPool(
      pool,
      () => /authentication failed/.test(hostStatus(pool, 'auth-wrong')?.message ?? ''),
      'authentication failed',
    );
    expect(hostStatus(pool, 'auth-wrong')?.ready).toBe(false);

    const everything = JSON.stringify([
      bench.pools.list().map((p) => p.status),
      bench.vms.list().map((v) => v.status),
      await bench.events('behind-auth'),
    ]);
    const logs = JSON.stringify(bench.logs.lines());
    for (const value of [PASSWORD, WRONG, Buffer.from(PASSWORD).toString('base64')]) {
      expect(everything).not.toContain(value);
      expect(logs).not.toContain(value);
    }
  });
});
