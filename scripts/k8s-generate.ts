/**
 * Generates the Kubernetes manifests that mirror `dashboards/` (one source of truth):
 *
 * - deploy/kubernetes/base/generated/prometheusrule.yaml: a Prometheus Operator PrometheusRule
 *   whose `spec.groups` are the groups of dashboards/prometheus/tokenwatch-rules.yml;
 * - deploy/kubernetes/base/generated/dashboards.yaml: one ConfigMap per Grafana dashboard with
 *   the `grafana_dashboard: "1"` label the Grafana sidecar (kiwigrid k8s-sidecar, as shipped by
 *   the Grafana and kube-prometheus-stack charts) watches for.
 *
 * `npm run k8s:generate` writes them; test/deploy/kubernetes.test.ts fails when the committed
 * files differ from what this produces. Self-contained (node builtins, yaml, prettier) so that
 * Node runs it with type stripping and no build.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { Document, Scalar, parse } from 'yaml';

const HEADER = (source: string): string =>
  `# GENERATED from ${source} by \`npm run k8s:generate\`: edit the source, then regenerate.\n` +
  '# test/deploy/kubernetes.test.ts fails when this file and its source drift apart.\n';

const OUT_DIR = 'deploy/kubernetes/base/generated';

/** The generated files, path (relative to the repository) to content. */
export async function generateKubernetesManifests(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const rulesPath = 'dashboards/prometheus/tokenwatch-rules.yml';
  const rules = parse(readFileSync(join(root, rulesPath), 'utf8')) as { groups: unknown[] };
  const ruleDoc = new Document({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'tokenwatch', labels: { 'app.kubernetes.io/component': 'alerting' } },
    spec: { groups: rules.groups },
  });
  out.set(`${OUT_DIR}/prometheusrule.yaml`, HEADER(rulesPath) + ruleDoc.toString({ lineWidth: 0 }));

  const dashboards = readdirSync(join(root, 'dashboards'))
    .filter((f) => f.endsWith('.json'))
    .sort();
  const docs = dashboards.map((file) => {
    const json = readFileSync(join(root, 'dashboards', file), 'utf8');
    // Fail here, not in Grafana: the ConfigMap must carry valid JSON.
    JSON.parse(json);
    const body = new Scalar(json.endsWith('\n') ? json : `${json}\n`);
    body.type = Scalar.BLOCK_LITERAL;
    return new Document({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `grafana-dashboard-${file.replace(/\.json$/, '')}`,
        labels: { grafana_dashboard: '1', 'app.kubernetes.io/component': 'dashboards' },
        // Folder for sidecars configured with folderAnnotation: grafana_folder.
        annotations: { grafana_folder: 'tokenwatch' },
      },
      data: { [file]: body },
    }).toString({ lineWidth: 0 });
  });
  out.set(
    `${OUT_DIR}/dashboards.yaml`,
    HEADER('dashboards/*.json') + docs.map((d) => `---\n${d}`).join(''),
  );

  // Formatted like every other file in the repository (prettier --check is part of lint).
  const options = (await prettier.resolveConfig(join(root, OUT_DIR, 'x.yaml'))) ?? {};
  for (const [path, text] of out) {
    out.set(path, await prettier.format(text, { ...options, parser: 'yaml' }));
  }
  return out;
}

async function main(): Promise<void> {
  const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
  mkdirSync(join(root, OUT_DIR), { recursive: true });
  for (const [path, text] of await generateKubernetesManifests(root)) {
    writeFileSync(join(root, path), text);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
