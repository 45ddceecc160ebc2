// The Helm chart deploy/helm/virtfleet: generated from the kustomize base by
// hack/helm/generate-chart.ts (regenerated here: a stale chart fails), `helm lint`, `helm template`
// object for object equal to `kubectl kustomize deploy/` (and deploy/monitoring), and install,
// upgrade and uninstall with helm built from Go modules (hack/helm) on a kube-apiserver + etcd of
// this file's own: the shared one already has the CRDs, which Helm would refuse to take over.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { controlPlaneBinaries, helmBinary } from '../../../src/devstack/binaries.js';
import { ControlPlane, type ControlPlaneInfo } from '../../../src/devstack/controlplane.js';
import { crdName } from '../../../src/api/crd.js';
import { RESOURCES } from '../../../src/api/resources.js';
import { ROOT } from './argocd.js';

const CHART = join(ROOT, 'deploy/helm/virtfleet');
const NAMESPACE = 'virtfleet-system';
const work = mkdtempSync(join(tmpdir(), 'virtfleet-helm-'));
const plane = new ControlPlane({ stateDir: join(work, 'plane'), unsafeNoFsync: true });
let info: ControlPlaneInfo | undefined;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(work, 'helm/cache'),
          HELM_CONFIG_HOME: join(work, 'helm/config'),
          HELM_DATA_HOME: join(work, 'helm/data'),
        },
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const helm = (args: string[]) => run(helmBinary(ROOT), [...(info ? ['--kubeconfig', info.kubeconfig] : []), ...args]);
const kubectl = (args: string[], input?: string) =>
  run(controlPlaneBinaries(ROOT).kubectl, [...(info ? ['--kubeconfig', info.kubeconfig] : []), ...args], input);

function objects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

const key = (object: K8sObject) => `${object.kind} ${object.metadata.namespace ?? ''}/${object.metadata.name}`;

/** By key, with what only the chart adds (the CRDs' keep policy) taken off and checked. */
function byKey(list: K8sObject[], fromChart: boolean): Record<string, K8sObject> {
  const result: Record<string, K8sObject> = {};
  for (const object of list) {
    if (fromChart && object.kind === 'CustomResourceDefinition') {
      expect({ crd: object.metadata.name, policy: object.metadata.annotations?.['helm.sh/resource-policy'] }).toEqual({
        crd: object.metadata.name,
        policy: 'keep',
      });
      delete object.metadata.annotations!['helm.sh/resource-policy'];
      if (Object.keys(object.metadata.annotations!).length === 0) delete object.metadata.annotations;
    }
    result[key(object)] = object;
  }
  return result;
}

async function template(args: string[] = []): Promise<K8sObject[]> {
  const rendered = await helm(['template', 'virtfleet', CHART, '--namespace', NAMESPACE, ...args]);
  expect({ code: rendered.code, stderr: rendered.stderr }).toEqual({ code: 0, stderr: '' });
  return objects(rendered.stdout);
}

async function kustomize(dir: string): Promise<K8sObject[]> {
  const rendered = await kubectl(['kustomize', join(ROOT, dir)]);
  expect({ code: rendered.code, stderr: rendered.stderr }).toEqual({ code: 0, stderr: '' });
  return objects(rendered.stdout);
}

function files(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else result[relative(dir, path)] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return result;
}

afterAll(async () => {
  await plane.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the chart as committed', () => {
  it('is what hack/helm/generate-chart.ts makes of the kustomize base now', () => {
    const out = join(work, 'generated');
    const generated = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'hack/helm/generate-chart.ts'), out], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect({ status: generated.status, stderr: generated.stderr }).toEqual({ status: 0, stderr: '' });
    expect(files(CHART)).toEqual(files(out));
  });

  it('passes helm lint --strict', async () => {
    const lint = await helm(['lint', '--strict', CHART]);
    expect({ code: lint.code, stdout: lint.stdout }).toEqual({
      code: 0,
      stdout: expect.stringContaining('1 chart(s) linted, 0 chart(s) failed'),
    });
  });

  it('renders exactly the objects of kubectl kustomize deploy/ (CRDs kept on uninstall)', async () => {
    expect(byKey(await template(['--set', 'namespace.create=true']), true)).toEqual(
      byKey(await kustomize('deploy'), false),
    );
    // By default without the Namespace: helm install --create-namespace makes it.
    const plain = await template();
    expect(plain.filter((object) => object.kind === 'Namespace')).toEqual([]);
    expect(plain).toHaveLength((await kustomize('deploy')).length - 1);
  });

  it('with monitoring.enabled, exactly the objects of kubectl kustomize deploy/monitoring', async () => {
    expect(byKey(await template(['--set', 'namespace.create=true', '--set', 'monitoring.enabled=true']), true)).toEqual(
      byKey(await kustomize('deploy/monitoring'), false),
    );
  });

  it('takes image, replicas, resources, flags and the install endpoint from values, in another namespace too', async () => {
    const rendered = await template([
      '--namespace',
      'fleet',
      '--set',
      'image.repository=registry.example/virtfleet,image.tag=0.2.0,image.pullPolicy=Always',
      '--set',
      'controller.replicas=3,controller.resources.limits.memory=512Mi',
      '--set',
      'controller.extraArgs[0]=--orphan-scan-interval=60',
      '--set',
      'installEndpoint.address=0.0.0.0:9000,installEndpoint.urlBase=http://install.example:8090',
      '--set',
      'installEndpoint.service.type=LoadBalancer,installEndpoint.service.port=80,installEndpoint.service.nodePort=31000',
      '--set',
      'apiServer.replicas=1,apiServer.extraArgs[0]=--max-sessions=64',
    ]);
    const deployment = (name: string) =>
      rendered.find((object) => object.kind === 'Deployment' && object.metadata.name === name) as K8sObject & {
        spec: {
          replicas: number;
          template: {
            spec: {
              containers: {
                image: string;
                imagePullPolicy?: string;
                args: string[];
                env: { name: string; value?: string }[];
                ports: { name: string; containerPort: number }[];
                resources: { limits: Record<string, string> };
              }[];
            };
          };
        };
      };
    const controller = deployment('virtfleet-controller');
    expect(controller.metadata.namespace).toBe('fleet');
    expect(controller.spec.replicas).toBe(3);
    const [container] = controller.spec.template.spec.containers;
    expect(container).toMatchObject({ image: 'registry.example/virtfleet:0.2.0', imagePullPolicy: 'Always' });
    expect(container!.resources.limits).toEqual({ cpu: '1', memory: '512Mi' });
    expect(container!.args.slice(-3)).toEqual([
      '--orphan-scan-interval=60',
      '--install-address=0.0.0.0:9000',
      '--install-url-base=$(INSTALL_URL_BASE)',
    ]);
    expect(container!.env.find((entry) => entry.name === 'INSTALL_URL_BASE')).toEqual({
      name: 'INSTALL_URL_BASE',
      value: 'http://install.example:8090',
    });
    expect(container!.ports.find((port) => port.name === 'install')).toEqual({ name: 'install', containerPort: 9000 });
    const service = rendered.find(
      (object) => object.kind === 'Service' && object.metadata.name === 'virtfleet-install',
    );
    expect(service?.spec).toEqual({
      type: 'LoadBalancer',
      selector: { 'app.kubernetes.io/component': 'controller', 'virtfleet.io/install-endpoint-leader': 'true' },
      ports: [{ name: 'install', port: 80, nodePort: 31000, targetPort: 'install' }],
    });
    const api = deployment('virtfleet-api');
    expect(api.spec.replicas).toBe(1);
    expect(api.spec.template.spec.containers[0]!.args.at(-1)).toBe('--max-sessions=64');
    // Every reference to the namespace follows the release's.
    expect(stringify(rendered)).not.toContain(NAMESPACE);
  });

  it('without installEndpoint.enabled has no install Service or flags; a ClusterIP Service has no nodePort', async () => {
    const controllerArgs = (rendered: K8sObject[]) =>
      (
        rendered.find(
          (object) => object.kind === 'Deployment' && object.metadata.name === 'virtfleet-controller',
        ) as unknown as {
          spec: { template: { spec: { containers: { args: string[] }[] } } };
        }
      ).spec.template.spec.containers[0]!.args;
    const installService = (rendered: K8sObject[]) =>
      rendered.find((object) => object.kind === 'Service' && object.metadata.name === 'virtfleet-install');

    const off = await template(['--set', 'installEndpoint.enabled=false']);
    expect(installService(off)).toBeUndefined();
    expect(controllerArgs(off).filter((arg) => arg.startsWith('--install-'))).toEqual([]);

    const clusterIp = await template(['--set', 'installEndpoint.service.type=ClusterIP']);
    expect(installService(clusterIp)?.spec).toMatchObject({
      type: 'ClusterIP',
      ports: [{ name: 'install', port: 8090, targetPort: 'install' }],
    });
    const ports = (installService(clusterIp)!.spec as { ports: Record<string, unknown>[] }).ports;
    expect(ports[0]).not.toHaveProperty('nodePort');

    // urlBase empty: guests are given http://address itself, with no env indirection.
    const direct = await template(['--set', 'installEndpoint.address=10.0.0.2:8090,installEndpoint.urlBase=']);
    expect(controllerArgs(direct).filter((arg) => arg.startsWith('--install-'))).toEqual([
      '--install-address=10.0.0.2:8090',
    ]);
  });
});

describe('on a kube-apiserver', () => {
  beforeAll(async () => {
    info = await plane.start();
    const created = await kubectl(['create', 'namespace', NAMESPACE]);
    expect(created.code).toBe(0);
  }, 120_000);

  it('helm template | kubectl apply --dry-run=server passes', async () => {
    const rendered = await helm(['template', 'virtfleet', CHART, '--namespace', NAMESPACE]);
    const dryRun = await kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
    expect({ code: dryRun.code, stderr: dryRun.stderr }).toEqual({ code: 0, stderr: '' });
    expect(dryRun.stdout).toContain('deployment.apps/virtfleet-controller created (server dry run)');
  });

  it('helm install brings up the objects kubectl apply -k deploy/ makes: a server-side diff of the base is empty', async () => {
    const installed = await helm(['install', 'virtfleet', CHART, '--namespace', NAMESPACE]);
    expect({ code: installed.code, stderr: installed.stderr }).toEqual({ code: 0, stderr: '' });
    const base = (await kustomize('deploy')).filter((object) => object.kind !== 'Namespace');
    const diff = await kubectl(
      ['diff', '--server-side', '--force-conflicts', '-f', '-'],
      // JSON, with the CRDs' U+2028/U+2029 escaped: YAML would take them for line breaks.
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: base }).replace(
        /[\u2028\u2029]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16)}`,
      ),
    );
    expect({ code: diff.code, stdout: diff.stdout, stderr: diff.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    for (const object of base) {
      const got = await kubectl([
        'get',
        object.apiVersion.includes('/') ? `${object.kind}.${object.apiVersion.split('/')[0]}` : object.kind,
        object.metadata.name,
        ...(object.metadata.namespace ? ['-n', object.metadata.namespace] : []),
        '-o',
        'name',
      ]);
      expect({ object: key(object), code: got.code }).toEqual({ object: key(object), code: 0 });
    }
  });

  it('helm upgrade changes what the values say and keeps the CRDs', async () => {
    const vm = {
      apiVersion: 'virtfleet.io/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'survivor', namespace: 'default' },
      spec: { hostPoolRef: { name: 'lab' }, memory: '128Mi', kernelBoot: { kernel: '/boot/vmlinuz' } },
    };
    const created = await kubectl(['apply', '-f', '-'], JSON.stringify(vm));
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
    const upgraded = await helm([
      'upgrade',
      'virtfleet',
      CHART,
      '--namespace',
      NAMESPACE,
      '--set',
      'controller.replicas=3,image.tag=0.2.0',
    ]);
    expect({ code: upgraded.code, stderr: upgraded.stderr }).toEqual({ code: 0, stderr: '' });
    const deployment = await kubectl([
      '-n',
      NAMESPACE,
      'get',
      'deployment',
      'virtfleet-controller',
      '-o',
      'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}',
    ]);
    expect(deployment.stdout).toBe('3 ghcr.io/virtfleet/virtfleet:0.2.0');
    const crds = await kubectl(['get', 'crd', '-o', 'name']);
    // Every kind of src/api/resources.ts, and nothing else.
    expect(crds.stdout.split('\n').filter(Boolean).sort()).toEqual(
      RESOURCES.map((resource) => `customresourcedefinition.apiextensions.k8s.io/${crdName(resource)}`).sort(),
    );
    const history = await helm(['history', 'virtfleet', '--namespace', NAMESPACE, '-o', 'json']);
    expect((JSON.parse(history.stdout) as { revision: number }[]).map((entry) => entry.revision)).toEqual([1, 2]);
  });

  it('helm uninstall removes the controller and leaves the CRDs and the VMs', async () => {
    const uninstalled = await helm(['uninstall', 'virtfleet', '--namespace', NAMESPACE, '--wait']);
    expect(uninstalled.code).toBe(0);
    expect(uninstalled.stdout + uninstalled.stderr).toMatch(/kept due to the resource policy/);
    const deployments = await kubectl(['-n', NAMESPACE, 'get', 'deployments', '-o', 'name']);
    expect(deployments.stdout).toBe('');
    const roles = await kubectl(['get', 'clusterroles', '-o', 'name']);
    expect(roles.stdout).not.toMatch(/virtfleet/);
    const crd = await kubectl(['get', 'crd', 'virtualmachines.virtfleet.io', '-o', 'name']);
    expect(crd.code).toBe(0);
    const survivor = await kubectl(['-n', 'default', 'get', 'virtualmachines.virtfleet.io', 'survivor', '-o', 'name']);
    expect(survivor.stdout).toBe('virtualmachine.virtfleet.io/survivor\n');
  });
});
