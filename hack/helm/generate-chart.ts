// Writes the Helm chart deploy/helm/virtfleet from the kustomize base, so the two never differ:
//   npx tsx hack/helm/generate-chart.ts [OUT_DIR [SOURCE]]   (default: deploy/helm/virtfleet, from this checkout;
//   SOURCE: another tree holding deploy/ and crds/, e.g. `git archive HEAD deploy crds` unpacked)
// Every object `kubectl kustomize deploy/` renders becomes one template, as it is, except:
// - the namespace virtfleet-system is the release's ({{ .Release.Namespace }}), and the Namespace
//   object is made only with namespace.create (helm install --create-namespace makes it otherwise);
// - CRDs carry helm.sh/resource-policy: keep, so an uninstall never deletes the VMs (helm#8668);
// - the two Deployments take their replicas, image, args, resources and the size of their volume
//   staging (downloads, uploads) from values.yaml, whose defaults are the base's own;
// - the install endpoint is values of installEndpoint, defaults again the base's: the controller's
//   --install-* flags (made with installEndpoint.enabled), its container port `install` (the port
//   of installEndpoint.address), its env INSTALL_URL_BASE (urlBase), and Service virtfleet-install
//   (made with enabled; its type, port and nodePort);
// - what deploy/monitoring adds (ServiceMonitor, PrometheusRule, dashboard ConfigMap) is made with
//   monitoring.enabled.
// test/integration/gitops/helm-chart.test.ts regenerates the chart and fails when it differs, and
// compares `helm template` with `kubectl kustomize deploy/` object by object.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Document, parseAllDocuments, stringify, visit } from 'yaml';
import { controlPlaneBinaries, repoRoot } from '../../src/devstack/binaries.js';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number | string }[];
  resources: Record<string, unknown>;
}
interface ServicePort {
  name?: string;
  port: number | string;
  nodePort?: number | string;
}

const NAMESPACE = 'virtfleet-system';
const CHART_VERSION = '0.1.0';
/** The Deployments whose settings are values, by name: their key in values.yaml. */
const DEPLOYMENTS: Record<string, 'controller' | 'apiServer'> = {
  'virtfleet-controller': 'controller',
  'virtfleet-api': 'apiServer',
};
/** Controller flags that are values of installEndpoint (and left out of controller.args). */
const INSTALL_FLAGS = { address: '--install-address', urlBase: '--install-url-base' } as const;
/** The controller's env variable --install-url-base names (so an overlay sets it by name). */
const INSTALL_URL_BASE_ENV = 'INSTALL_URL_BASE';
/** The Service in front of the install endpoint, made with installEndpoint.enabled. */
const INSTALL_SERVICE = 'virtfleet-install';

const root = repoRoot();
const out = resolve(process.argv[2] ?? join(root, 'deploy/helm/virtfleet'));
const source = resolve(process.argv[3] ?? root);
const kubectl = controlPlaneBinaries(root).kubectl;

function kustomize(dir: string): K8sObject[] {
  const text = execFileSync(kubectl, ['kustomize', join(source, dir)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((doc) => doc.toJS() as K8sObject);
}

const key = (object: K8sObject) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
const base = kustomize('deploy');
const inBase = new Set(base.map(key));
const monitoring = kustomize('deploy/monitoring').filter((object) => !inBase.has(key(object)));

/** Values' defaults, taken from the base's Deployments. */
const values: Record<string, Record<string, unknown>> = {};
let image = '';
const installDefaults: Record<keyof typeof INSTALL_FLAGS, string> = { address: '', urlBase: '' };
const installService = { type: '', port: 0, nodePort: 0 };

/** The install endpoint's container port, env and flags as markers (see expandMarkers). */
function templateInstallEndpoint(container: Container): string[] {
  const args = container.args;
  const address = args.find((arg) => arg.startsWith(`${INSTALL_FLAGS.address}=`));
  const urlBase = args.find((arg) => arg.startsWith(`${INSTALL_FLAGS.urlBase}=`));
  const env = container.env?.find((entry) => entry.name === INSTALL_URL_BASE_ENV);
  const port = container.ports?.find((entry) => entry.name === 'install');
  if (
    !address ||
    urlBase !== `${INSTALL_FLAGS.urlBase}=$(${INSTALL_URL_BASE_ENV})` ||
    env?.value === undefined ||
    !port
  )
    throw new Error(
      `the controller needs ${INSTALL_FLAGS.address}=HOST:PORT, ${INSTALL_FLAGS.urlBase}=$(${INSTALL_URL_BASE_ENV}), ` +
        `env ${INSTALL_URL_BASE_ENV} and a container port named install (the chart's installEndpoint values)`,
    );
  if (args.slice(-2).join(' ') !== `${address} ${urlBase}`)
    throw new Error(`the controller's ${INSTALL_FLAGS.address} and ${INSTALL_FLAGS.urlBase} must be its last args`);
  installDefaults.address = address.slice(INSTALL_FLAGS.address.length + 1);
  if (String(port.containerPort) !== installDefaults.address.split(':').at(-1))
    throw new Error(`the container port install must be the port of ${INSTALL_FLAGS.address}`);
  installDefaults.urlBase = env.value;
  env.value = '__VF_INSTALL_URL_BASE__';
  port.containerPort = '__VF_INSTALL_PORT__';
  return args.slice(0, -2);
}

/** Service virtfleet-install's type, port and nodePort as markers. */
function templateInstallService(object: K8sObject): void {
  if (object.kind !== 'Service' || object.metadata.name !== INSTALL_SERVICE) return;
  const spec = object.spec as { type: string; ports: ServicePort[] };
  if (spec.ports.length !== 1) throw new Error(`${key(object)}: one port expected (the chart's values cover one)`);
  const port = spec.ports[0]!;
  Object.assign(installService, { type: spec.type, port: Number(port.port), nodePort: Number(port.nodePort ?? 0) });
  spec.type = '__VF_SVC_TYPE__';
  port.port = '__VF_SVC_PORT__';
  port.nodePort = '__VF_SVC_NODEPORT__';
}

/** A Deployment's container with the fields that are values replaced by markers (see below). */
function templateDeployment(object: K8sObject): void {
  const valuesKey = object.kind === 'Deployment' ? DEPLOYMENTS[object.metadata.name] : undefined;
  if (!valuesKey) return;
  const spec = object.spec as { replicas: number; template: { spec: { containers: Container[] } } };
  if (spec.template.spec.containers.length !== 1)
    throw new Error(`${key(object)}: one container expected (the chart's values cover one)`);
  const container = spec.template.spec.containers[0]!;
  if (image && image !== container.image) throw new Error(`${key(object)}: another image than ${image}`);
  image = container.image;
  const args = valuesKey === 'controller' ? templateInstallEndpoint(container) : container.args;
  values[valuesKey] = { replicas: spec.replicas, args, extraArgs: [], resources: container.resources };
  // The staging volume's size (downloads, uploads) is a value: <key>.staging.sizeLimit.
  const podSpec = spec.template.spec as { volumes?: Array<{ name: string; emptyDir?: { sizeLimit?: string } }> };
  const staging = podSpec.volumes?.find((volume) => volume.name === 'staging')?.emptyDir;
  if (staging?.sizeLimit !== undefined) {
    values[valuesKey]!.staging = { sizeLimit: staging.sizeLimit };
    staging.sizeLimit = `__VF_STAGING_${valuesKey}__`;
  }
  (spec as Record<string, unknown>).replicas = `__VF_REPLICAS_${valuesKey}__`;
  container.image = '__VF_IMAGE__';
  (container as unknown as Record<string, unknown>).args = `__VF_ARGS_${valuesKey}__`;
  (container as unknown as Record<string, unknown>).resources = `__VF_RESOURCES_${valuesKey}__`;
}

/** Helm reads {{ }} in templates: braces that belong to the object (alert templates) are escaped. */
function escapeBraces(text: string): string {
  return text.replace(/\{\{|\}\}/g, (braces) => `{{ "${braces}" }}`);
}

/**
 * The markers set by templateDeployment, as template actions at their indentation (a marker can
 * be the first key of a list item: `- args: …`, whose keys are then indented past the dash).
 */
function expandMarkers(text: string): string {
  const at = (field: string, marker: string) => new RegExp(`^(\\s*)(- )?${field}: __VF_${marker}__$`, 'gm');
  const pad = (indent: string, dash: string | undefined) => ' '.repeat(indent.length + (dash ? 2 : 0));
  return text
    .replace(at('replicas', 'REPLICAS_(\\w+)'), '$1$2replicas: {{ .Values.$3.replicas }}')
    .replace(at('image', 'IMAGE'), (_m, indent: string, dash: string | undefined) => {
      const inner = pad(indent, dash);
      return (
        `${indent}${dash ?? ''}image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n` +
        `${inner}{{- with .Values.image.pullPolicy }}\n${inner}imagePullPolicy: {{ . }}\n${inner}{{- end }}`
      );
    })
    .replace(at('args', 'ARGS_(\\w+)'), (_m, indent: string, dash: string | undefined, valuesKey: string) => {
      const inner = pad(indent, dash);
      const lines = [
        `${indent}${dash ?? ''}args:`,
        `${inner}  {{- toYaml (concat .Values.${valuesKey}.args .Values.${valuesKey}.extraArgs) | nindent ${inner.length + 2} }}`,
      ];
      if (valuesKey === 'controller') {
        lines.push(
          `${inner}  {{- if .Values.installEndpoint.enabled }}`,
          `${inner}  - {{ printf "${INSTALL_FLAGS.address}=%s" .Values.installEndpoint.address | quote }}`,
          `${inner}  {{- if .Values.installEndpoint.urlBase }}`,
          `${inner}  - ${INSTALL_FLAGS.urlBase}=$(${INSTALL_URL_BASE_ENV})`,
          `${inner}  {{- end }}`,
          `${inner}  {{- end }}`,
        );
      }
      return lines.join('\n');
    })
    .replace(at('value', 'INSTALL_URL_BASE'), '$1$2value: {{ .Values.installEndpoint.urlBase | quote }}')
    .replace(
      at('containerPort', 'INSTALL_PORT'),
      '$1$2containerPort: {{ splitList ":" .Values.installEndpoint.address | last }}',
    )
    .replace(at('type', 'SVC_TYPE'), '$1$2type: {{ .Values.installEndpoint.service.type }}')
    .replace(at('port', 'SVC_PORT'), '$1$2port: {{ .Values.installEndpoint.service.port }}')
    .replace(at('nodePort', 'SVC_NODEPORT'), (_m, indent: string, dash: string | undefined) => {
      const inner = pad(indent, dash);
      const service = '.Values.installEndpoint.service';
      return (
        `${indent}${dash ?? ''}{{- if and (ne ${service}.type "ClusterIP") ${service}.nodePort }}\n` +
        `${inner}nodePort: {{ ${service}.nodePort }}\n${inner}{{- end }}`
      );
    })
    .replace(at('sizeLimit', 'STAGING_(\\w+)'), '$1$2sizeLimit: {{ .Values.$3.staging.sizeLimit }}')
    .replace(at('resources', 'RESOURCES_(\\w+)'), (_m, indent: string, dash: string | undefined, valuesKey: string) => {
      const inner = pad(indent, dash);
      return `${indent}${dash ?? ''}resources:\n${inner}  {{- toYaml .Values.${valuesKey}.resources | nindent ${inner.length + 2} }}`;
    });
}

/**
 * YAML that Go's parser (Helm's) reads back the same: strings with characters YAML 1.1 takes for
 * line breaks (U+0085, U+2028, U+2029: the CRDs' patterns refuse them) are double-quoted, those
 * characters escaped.
 */
function toYaml(object: K8sObject): string {
  const doc = new Document(object);
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /[\u0085\u2028\u2029]/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc
    .toString({ lineWidth: 0 })
    .replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function render(object: K8sObject, condition?: string): string {
  if (object.kind === 'CustomResourceDefinition') {
    object.metadata.annotations = { ...object.metadata.annotations, 'helm.sh/resource-policy': 'keep' };
  }
  templateDeployment(object);
  templateInstallService(object);
  let text = expandMarkers(escapeBraces(toYaml(object)));
  text = text.split(NAMESPACE).join('{{ .Release.Namespace }}');
  if (text.includes('__VF_')) throw new Error(`${key(object)}: a marker was not expanded:\n${text}`);
  return condition ? `{{- if ${condition} }}\n${text}{{- end }}\n` : text;
}

function fileName(object: K8sObject): string {
  const kind = object.kind.replace(/[a-z][A-Z]/g, (pair) => `${pair[0]}-${pair[1]}`).toLowerCase();
  return `${kind}-${object.metadata.name.replace(/[^a-z0-9.-]/gi, '-')}.yaml`;
}

const HEADER =
  '# GENERATED by hack/helm/generate-chart.ts from the kustomize base (deploy/, deploy/monitoring): do not edit;\n' +
  '# change deploy/ and run `npx tsx hack/helm/generate-chart.ts`.\n';

const templates = new Map<string, string>();
const CONDITIONS: Record<string, string> = {
  'Namespace//virtfleet-system': '.Values.namespace.create',
  [`Service/${NAMESPACE}/${INSTALL_SERVICE}`]: '.Values.installEndpoint.enabled',
};
for (const object of base) {
  const condition = CONDITIONS[key(object)];
  templates.set(fileName(object), HEADER + render(object, condition));
}
for (const object of monitoring) templates.set(fileName(object), HEADER + render(object, '.Values.monitoring.enabled'));
if (!image.includes(':')) throw new Error(`the base's image ${image} has no tag`);
const [repository, tag] = [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)];

const chart = {
  apiVersion: 'v2',
  name: 'virtfleet',
  description: 'virtfleet: VirtualMachines on libvirt hosts, run by a Kubernetes controller',
  type: 'application',
  version: CHART_VERSION,
  appVersion: tag,
  home: 'https://github.com/virtfleet/virtfleet',
};

const valuesText = `${HEADER}# Defaults are the kustomize base's own: with them (and namespace.create=true) the chart renders
# exactly the objects of \`kubectl kustomize deploy/\`.

# Make the Namespace object (with the base's labels). Off by default: \`helm install -n NS
# --create-namespace\` makes it, and Helm needs it before the release exists.
namespace:
  create: false

image:
  repository: ${repository}
  tag: "${tag}"
  # Set to add imagePullPolicy to both Deployments (the base sets none).
  pullPolicy: ""

# The controller (Deployment virtfleet-controller): flags as in \`virtfleet controller --help\`;
# staging.sizeLimit: the node-disk volume downloads (images, installers) are staged on.
${stringify({ controller: values.controller }, { lineWidth: 0 }).trimEnd()}

# The aggregated API server for console, VNC and image uploads (Deployment virtfleet-api): flags as in
# \`virtfleet api --help\`; staging.sizeLimit: the volume uploads are staged on (keep --max-upload-bytes within it).
${stringify({ apiServer: values.apiServer }, { lineWidth: 0 }).trimEnd()}

# The controller's install endpoint (Kickstart for VMs with spec.install; docs/provisioning.md,
# docs/gitops.md). Only the leader serves it, and only the leader's pod carries the label Service
# ${INSTALL_SERVICE} selects. enabled=false: no endpoint, no Service, and VMs with spec.install wait.
installEndpoint:
  enabled: true
  # --install-address: where it listens in the pod (its port is the container port install).
  address: "${installDefaults.address}"
  # --install-url-base (through env ${INSTALL_URL_BASE_ENV}): the URL installers are given, an address
  # their libvirt host can route to. The default is the leader's node at the nodePort below; set
  # a LoadBalancer's address or a DNS name here when nodes are not reachable from the hosts.
  # Empty: the URL is http://address, which must then name one address, not 0.0.0.0.
  urlBase: "${installDefaults.urlBase}"
  # Service ${INSTALL_SERVICE}: NodePort by default, since guests are rarely inside the cluster network.
  service:
    type: ${installService.type}
    port: ${installService.port}
    # Fixed (the default urlBase names it); ignored for ClusterIP; empty lets Kubernetes pick one.
    nodePort: ${installService.nodePort || '""'}

# The Prometheus Operator objects of deploy/monitoring: a ServiceMonitor, the alerting rules as a
# PrometheusRule, and the Grafana dashboard ConfigMap (docs/observability.md).
monitoring:
  enabled: false
`;

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'templates'), { recursive: true });
writeFileSync(join(out, 'Chart.yaml'), HEADER + stringify(chart));
writeFileSync(join(out, 'values.yaml'), valuesText);
writeFileSync(
  join(out, '.helmignore'),
  '# Nothing but Chart.yaml, values.yaml and templates/ belongs in the package.\n*.md\n',
);
for (const [name, text] of templates) writeFileSync(join(out, 'templates', name), text);
process.stdout.write(
  `wrote ${out}: ${readdirSync(join(out, 'templates')).length} templates (${base.length} base objects, ${monitoring.length} monitoring)\n`,
);
