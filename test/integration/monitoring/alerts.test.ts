// deploy/monitoring/: the alerting rules (promtool check rules + promtool test rules), the
// PrometheusRule made from them, the ServiceMonitor and the Grafana dashboard as kustomize renders
// them, and the runbooks and docs that go with each alert. Metric names are checked against the
// metrics ControllerMetrics really registers, so renaming one breaks this test until the rules and
// the dashboard follow. promtool comes with Debian's prometheus package (hack/setup.sh); kustomize
// is the kubectl of this tier.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ControllerMetrics } from '../../../src/observability/metrics.js';
import { VmUsageCollector } from '../../../src/observability/vm-usage.js';
import { eventMetrics } from '../../../src/runtime/events.js';
import { kubectl } from '../../harness/kube.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const monitoringDir = join(root, 'deploy/monitoring');
const rulesDir = join(monitoringDir, 'rules');
const RULES = join(rulesDir, 'virtfleet.rules.yaml');
const RULE_TESTS = join(rulesDir, 'virtfleet.rules.test.yaml');
const PROMETHEUS_RULE = join(monitoringDir, 'prometheusrule.yaml');
const RENDER = join(rulesDir, 'render-prometheusrule.sh');
const DASHBOARD = join(monitoringDir, 'grafana-dashboard.json');
const RUNBOOKS = join(root, 'docs/runbooks');
const OBSERVABILITY_DOC = join(root, 'docs/observability.md');
const MONITORING_KUSTOMIZATION = join(monitoringDir, 'kustomization.yaml');
/** Where runbook_url points by default: the repository's docs/ on GitHub, so Alertmanager shows a working link. */
const DEFAULT_RUNBOOK_BASE = 'https://github.com/virtfleet/virtfleet/blob/main/docs';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: AlertCase[] }[];
}
interface Target {
  refId: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; datasource?: { uid?: string } }[] };
}
interface Kustomization {
  configMapGenerator?: {
    name: string;
    behavior?: string;
    literals?: string[];
    options?: { annotations?: Record<string, string> };
  }[];
  replacements?: unknown[];
  resources?: string[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const ruleFile = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const alerts = ruleFile.groups
  .flatMap((group) => group.rules)
  .filter((rule): rule is Rule & { alert: string } => rule.alert !== undefined);
const alertNames = alerts.map((rule) => rule.alert);
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const dataPanels = panels.filter((panel) => panel.type !== 'row');

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (run.error) {
    throw new Error(
      `promtool could not run (hack/setup.sh installs it with Debian's prometheus package): ${run.error.message}`,
    );
  }
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** The metrics ControllerMetrics registers, histograms with their _bucket, _sum and _count series. */
async function exportedMetrics(processMetrics: boolean): Promise<{ metrics: string[]; series: Set<string> }> {
  const { registry } = new ControllerMetrics(undefined, { processMetrics });
  // The per-VM usage metrics, which addControllers registers beside them (no hosts here: no series).
  new VmUsageCollector({ hosts: () => [], vms: () => [] }, registry);
  // The Event recorder's, which addControllers has it register there.
  eventMetrics(registry, () => 0);
  const registered = await registry.getMetricsAsJSON();
  const series = new Set<string>();
  for (const metric of registered) {
    series.add(metric.name);
    if (String(metric.type) === 'histogram' || String(metric.type) === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) series.add(`${metric.name}${suffix}`);
    }
  }
  return { metrics: registered.map((metric) => metric.name), series };
}

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression (or a Grafana one, with $variables) selects. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ');
  const names = new Set<string>();
  for (const [, name] of bare.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(name!.toLowerCase())) names.add(name!);
  }
  return [...names];
}

/** Grafana's variables replaced by something PromQL parses: intervals by 5m, others (label regexes) by .*. */
function withoutVariables(expr: string): string {
  return expr.replace(/\$\{?__\w+\}?/g, '5m').replace(/\$\{?\w+\}?/g, '.*');
}

/** Where two texts first differ, for a readable failure. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const b = expected.split('\n');
  const line = a.findIndex((text, index) => text !== b[index]);
  const at = line === -1 ? Math.min(a.length, b.length) : line;
  return `line ${at + 1}: committed ${JSON.stringify(a[at])}, expected ${JSON.stringify(b[at])}`;
}

async function kustomize(dir: string): Promise<K8sObject[]> {
  const result = await kubectl(['kustomize', dir]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJSON() as K8sObject)
    .filter(Boolean);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found)
    throw new Error(
      `no ${kind} ${name} in ${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`,
    );
  return found;
}

describe('alerting rules (deploy/monitoring/rules/virtfleet.rules.yaml)', () => {
  it('pass promtool check rules, every lint included', () => {
    const check = promtool(['check', 'rules', '--lint=all', '--lint-fatal', RULES], rulesDir);
    const rules = ruleFile.groups.flatMap((group) => group.rules).length;
    expect(check).toEqual({ status: 0, output: expect.stringContaining(`SUCCESS: ${rules} rules found`) });
    expect(check.output).not.toMatch(/warning|lint/i);
  });

  it('pass their unit tests (promtool test rules virtfleet.rules.test.yaml)', () => {
    const test = promtool(['test', 'rules', RULE_TESTS], rulesDir);
    expect(test).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('have, for every alert, a unit test where it fires (labels and annotations checked) and one where it does not', () => {
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTests;
    expect(tests.rule_files).toEqual(['virtfleet.rules.yaml']);
    const cases = tests.tests.flatMap((test) => test.alert_rule_test ?? []);
    const coverage = alertNames.map((alert) => {
      const mine = cases.filter((entry) => entry.alertname === alert);
      const firing = mine.filter((entry) => (entry.exp_alerts ?? []).length > 0);
      return {
        alert,
        fires: firing.length > 0,
        staysQuiet: mine.some((entry) => (entry.exp_alerts ?? []).length === 0),
        annotationsChecked: firing.every((entry) =>
          entry.exp_alerts!.every(
            (expected) => expected.exp_annotations !== undefined && expected.exp_labels !== undefined,
          ),
        ),
      };
    });
    expect(coverage).toEqual(
      alertNames.map((alert) => ({ alert, fires: true, staysQuiet: true, annotationsChecked: true })),
    );
    expect(cases.map((entry) => entry.alertname).filter((name) => !alertNames.includes(name))).toEqual([]);
  });

  it('follow the conventions: unique Virtfleet* names, severity critical or warning, summary, description and a runbook per alert', () => {
    expect(new Set(alertNames).size).toBe(alertNames.length);
    for (const rule of alerts) {
      expect({
        alert: rule.alert,
        name: rule.alert.startsWith('Virtfleet'),
        severity: rule.labels?.severity,
        annotations: Object.keys(rule.annotations ?? {}).sort(),
        // KubeVirt's alert labels, so one routing tree serves both.
        partOf: rule.labels?.kubernetes_operator_part_of,
        component: rule.labels?.kubernetes_operator_component,
        healthImpact: rule.labels?.operator_health_impact,
      }).toEqual({
        alert: rule.alert,
        name: true,
        severity: expect.stringMatching(/^(critical|warning)$/),
        annotations: ['description', 'runbook_url', 'summary'],
        partOf: 'virtfleet',
        component: 'virtfleet-controller',
        healthImpact:
          rule.alert.startsWith('VirtfleetController') || /Leader|Reconcile|Workqueue|KubeAPI/.test(rule.alert)
            ? expect.stringMatching(/^(critical|warning)$/)
            : 'none',
      });
      // A link that opens as it is (Alertmanager, Grafana), under the default base kustomize sets.
      expect(rule.annotations!.runbook_url).toBe(`${DEFAULT_RUNBOOK_BASE}/runbooks/${rule.alert}.md`);
    }
    // The alerts the issue asks for, under the names the runbooks and docs use.
    expect(alertNames).toEqual(
      expect.arrayContaining([
        'VirtfleetVMDown',
        'VirtfleetVMCrashLooping',
        'VirtfleetHostDown',
        'VirtfleetVMRecoveryBlocked',
        'VirtfleetMigrationsFailing',
        'VirtfleetControllerNotLeading',
        'VirtfleetReconcileErrors',
        'VirtfleetVMStuckInPhase',
        'VirtfleetVMExcessiveMigrations',
      ]),
    );
  });

  it('select only metrics the controller exports (and up)', async () => {
    const { series } = await exportedMetrics(true);
    const unknown = alerts.flatMap((rule) =>
      metricNames(rule.expr)
        .filter((name) => name !== 'up' && !series.has(name))
        .map((name) => `${rule.alert}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });
});

describe('deploy/monitoring with kustomize', () => {
  it('prometheusrule.yaml is what render-prometheusrule.sh makes of the rules', () => {
    const rendered = spawnSync('sh', [RENDER], { encoding: 'utf8' });
    expect({ status: rendered.status, stderr: rendered.stderr }).toEqual({ status: 0, stderr: '' });
    const committed = readFileSync(PROMETHEUS_RULE, 'utf8');
    if (committed !== rendered.stdout) {
      throw new Error(
        `deploy/monitoring/prometheusrule.yaml is stale (${firstDifference(committed, rendered.stdout)}); run ` +
          'deploy/monitoring/rules/render-prometheusrule.sh > deploy/monitoring/prometheusrule.yaml',
      );
    }
  });

  it('renders the base, a PrometheusRule with exactly the rules, a ServiceMonitor that finds the metrics Service, and the dashboard ConfigMap', async () => {
    const objects = await kustomize(monitoringDir);
    expect(find(objects, 'Deployment', 'virtfleet-controller').metadata.namespace).toBe('virtfleet-system');

    const rule = find(objects, 'PrometheusRule', 'virtfleet-controller');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.metadata.namespace).toBe('virtfleet-system');
    expect(rule.spec).toEqual(ruleFile);

    const service = find(objects, 'Service', 'virtfleet-controller-metrics');
    const monitor = find(objects, 'ServiceMonitor', 'virtfleet-controller');
    const spec = monitor.spec as {
      jobLabel?: string;
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string; honorLabels?: boolean }[];
    };
    expect(
      Object.entries(spec.selector.matchLabels).every(([key, value]) => service.metadata.labels?.[key] === value),
    ).toBe(true);
    const ports = (service.spec as { ports: { name: string }[] }).ports.map((port) => port.name);
    expect(spec.endpoints.map((endpoint) => [endpoint.port, endpoint.honorLabels])).toEqual([['metrics', true]]);
    expect(ports).toContain('metrics');
    // No jobLabel: Prometheus's job label is the Service's name, as the rules and the dashboard say.
    expect(spec.jobLabel).toBeUndefined();
    const jobs = new Set([
      ...alerts.flatMap((entry) => [...entry.expr.matchAll(/job="([^"]*)"/g)].map((match) => match[1])),
      ...dataPanels.flatMap((panel) =>
        (panel.targets ?? []).flatMap((target) =>
          [...(target.expr ?? '').matchAll(/job="([^"]*)"/g)].map((match) => match[1]),
        ),
      ),
    ]);
    expect([...jobs]).toEqual([service.metadata.name]);

    const configMap = find(objects, 'ConfigMap', 'virtfleet-grafana-dashboard');
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    expect(configMap.data?.['virtfleet.json']).toBe(readFileSync(DASHBOARD, 'utf8'));
    // The API server takes it, last-applied annotation and all (client-side apply keeps the whole
    // object in an annotation, at most 256 KiB). In namespace default, so nothing else is needed;
    // the ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs, not installed here.
    const dryRun = await kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify({ ...configMap, metadata: { ...configMap.metadata, namespace: 'default' } }),
    });
    expect({ code: dryRun.code, stderr: dryRun.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('runbook_url is <base>/runbooks/<alert>.md with base a value of the kustomization, by default the repository on GitHub', async () => {
    const kustomization = parse(readFileSync(MONITORING_KUSTOMIZATION, 'utf8')) as Kustomization;
    const generator = kustomization.configMapGenerator?.find((entry) => entry.name === 'virtfleet-runbooks');
    expect(generator?.literals).toEqual([`base=${DEFAULT_RUNBOOK_BASE}`]);
    expect(generator?.options?.annotations?.['config.kubernetes.io/local-config']).toBe('true');
    // The value is used: another base in a copy of the kustomization moves every link.
    const dir = mkdtempSync(join(tmpdir(), 'virtfleet-runbook-base-'));
    try {
      const other = 'https://docs.example.org/virtfleet/docs';
      // The files next to the kustomization are copied (kustomize reads files only below its root).
      const resources = kustomization.resources!.map((resource) =>
        existsSync(join(monitoringDir, resource, 'kustomization.yaml'))
          ? relative(dir, join(monitoringDir, resource))
          : resource,
      );
      for (const file of [...resources.filter((resource) => resource.endsWith('.yaml')), 'grafana-dashboard.json']) {
        writeFileSync(join(dir, file), readFileSync(join(monitoringDir, file), 'utf8'));
      }
      const configMapGenerator = kustomization.configMapGenerator!.map((entry) =>
        entry.name === 'virtfleet-runbooks' ? { ...entry, literals: [`base=${other}`] } : entry,
      );
      writeFileSync(join(dir, 'kustomization.yaml'), stringify({ ...kustomization, resources, configMapGenerator }));
      const objects = await kustomize(dir);
      const rule = find(objects, 'PrometheusRule', 'virtfleet-controller').spec as unknown as RuleFile;
      expect(rule.groups.flatMap((group) => group.rules).map((entry) => entry.annotations?.runbook_url)).toEqual(
        alertNames.map((alert) => `${other}/runbooks/${alert}.md`),
      );
      expect(objects.filter((object) => object.metadata.name === 'virtfleet-runbooks')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the overlay in docs/observability.md turns runbook_url into links under another base URL', async () => {
    const doc = readFileSync(OBSERVABILITY_DOC, 'utf8');
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((match) => match[1]!)
      .find((text) => text.includes('virtfleet-runbooks'));
    if (!block) throw new Error('docs/observability.md has no yaml block with the virtfleet-runbooks overlay');
    const overlay = parse(block) as { resources: string[]; configMapGenerator: { literals: string[] }[] };
    const base = overlay.configMapGenerator[0]!.literals.find((literal) => literal.startsWith('base='))!.slice(
      'base='.length,
    );
    expect(base).not.toBe(DEFAULT_RUNBOOK_BASE);
    const dir = mkdtempSync(join(tmpdir(), 'virtfleet-runbook-overlay-'));
    try {
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        stringify({ ...overlay, resources: [relative(dir, monitoringDir)] }),
      );
      const objects = await kustomize(dir);
      const rule = find(objects, 'PrometheusRule', 'virtfleet-controller').spec as unknown as RuleFile;
      const urls = rule.groups.flatMap((group) => group.rules).map((entry) => entry.annotations?.runbook_url);
      expect(urls).toEqual(alertNames.map((alert) => `${base}/runbooks/${alert}.md`));
      expect(objects.filter((object) => object.metadata.name === 'virtfleet-runbooks')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana dashboard (deploy/monitoring/grafana-dashboard.json)', () => {
  it('is a schemaVersion 39 dashboard with a Prometheus ${datasource} variable that every panel and query uses', () => {
    expect({ uid: dashboard.uid, title: dashboard.title, schemaVersion: dashboard.schemaVersion }).toEqual({
      uid: 'virtfleet-overview',
      title: 'virtfleet',
      schemaVersion: 39,
    });
    expect(dashboard.templating.list.find((variable) => variable.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    for (const variable of dashboard.templating.list.filter((entry) => entry.type === 'query'))
      expect(variable.datasource?.uid).toBe('${datasource}');
    expect(dataPanels.length).toBeGreaterThan(0);
    for (const panel of dataPanels) {
      expect({
        panel: panel.title,
        datasource: panel.datasource?.uid,
        queries: (panel.targets ?? []).length > 0,
      }).toEqual({ panel: panel.title, datasource: '${datasource}', queries: true });
      for (const target of panel.targets!)
        expect({
          panel: panel.title,
          refId: target.refId,
          datasource: target.datasource?.uid,
          expr: typeof target.expr,
        }).toEqual({ panel: panel.title, refId: target.refId, datasource: '${datasource}', expr: 'string' });
    }
  });

  it('has unique panel ids and a layout without overlaps within 24 columns', () => {
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const taken = new Map<string, string>();
    const overlaps: string[] = [];
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      expect({ panel: panel.title, fits: x >= 0 && w > 0 && h > 0 && x + w <= 24 }).toEqual({
        panel: panel.title,
        fits: true,
      });
      for (let column = x; column < x + w; column++) {
        for (let row = y; row < y + h; row++) {
          const other = taken.get(`${column},${row}`);
          if (other) overlaps.push(`${panel.title} / ${other}`);
          taken.set(`${column},${row}`, panel.title);
        }
      }
    }
    expect([...new Set(overlaps)]).toEqual([]);
  });

  it('queries only metrics the controller exports, and shows every one of its own', async () => {
    const { series } = await exportedMetrics(true);
    const used = new Set<string>();
    const unknown: string[] = [];
    const sources = [
      ...dataPanels.flatMap((panel) =>
        (panel.targets ?? []).map((target) => ({ where: `${panel.title} ${target.refId}`, expr: target.expr ?? '' })),
      ),
      ...dashboard.templating.list
        .filter((entry) => entry.type === 'query')
        .map((entry) => ({
          where: `variable ${entry.name}`,
          expr: String((entry.query as { query?: string })?.query ?? entry.query),
        })),
    ];
    for (const { where, expr } of sources) {
      for (const name of metricNames(expr.replace(/^label_values\(([^,)]+).*$/, '$1'))) {
        used.add(name);
        if (name !== 'up' && !series.has(name)) unknown.push(`${where}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
    // Process metrics are optional on the dashboard; the controller's own are not.
    const { metrics: own } = await exportedMetrics(false);
    const shown = (metric: string) =>
      [metric, `${metric}_bucket`, `${metric}_count`, `${metric}_sum`].some((name) => used.has(name));
    expect(own.filter((metric) => !shown(metric))).toEqual([]);
  });

  it('has queries that parse as PromQL (promtool check rules on them as recording rules)', () => {
    const rules = dataPanels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        record: `dashboard:panel_${panel.id}:${target.refId}`,
        expr: withoutVariables(target.expr ?? ''),
      })),
    );
    const dir = mkdtempSync(join(tmpdir(), 'virtfleet-dashboard-rules-'));
    try {
      writeFileSync(join(dir, 'dashboard.rules.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
      const check = promtool(['check', 'rules', '--lint=none', 'dashboard.rules.yaml'], dir);
      expect(check).toEqual({ status: 0, output: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runbooks and docs', () => {
  it('every alert has docs/runbooks/<alert>.md with the usual sections, and every runbook an alert', () => {
    for (const alert of alertNames) {
      const file = join(RUNBOOKS, `${alert}.md`);
      expect({ alert, runbook: existsSync(file) }).toEqual({ alert, runbook: true });
      const text = readFileSync(file, 'utf8');
      const headings = [...text.matchAll(/^(#{1,2}) (.+)$/gm)].map((match) => `${match[1]} ${match[2]}`);
      expect({ alert, headings }).toEqual({
        alert,
        headings: [`# ${alert}`, '## Meaning', '## Impact', '## Diagnosis', '## Mitigation', '## Escalation'],
      });
    }
    const runbooks = readdirSync(RUNBOOKS).filter((file) => file.endsWith('.md') && file !== 'README.md');
    expect(runbooks.map((file) => file.replace(/\.md$/, '')).sort()).toEqual([...alertNames].sort());
    const index = readFileSync(join(RUNBOOKS, 'README.md'), 'utf8');
    expect(alertNames.filter((alert) => !index.includes(`(${alert}.md)`))).toEqual([]);
  });

  it('docs/observability.md lists every alert with its severity and runbook, and every metric of the controller', async () => {
    const doc = readFileSync(OBSERVABILITY_DOC, 'utf8');
    const missing = alerts.filter(
      (rule) =>
        !new RegExp(
          `^\\| \\[\`${rule.alert}\`\\]\\(runbooks/${rule.alert}\\.md\\) \\| ${rule.labels!.severity} \\|`,
          'm',
        ).test(doc),
    );
    expect(missing.map((rule) => rule.alert)).toEqual([]);
    const { metrics } = await exportedMetrics(false);
    expect(metrics.filter((metric) => !new RegExp(`^\\| \`${metric}\``, 'm').test(doc))).toEqual([]);
  });
});
