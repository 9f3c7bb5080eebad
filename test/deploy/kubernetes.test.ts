import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { generateKubernetesManifests } from '../../scripts/k8s-generate.js';
import { writeKeyPair } from '../../src/audit/signing-keys.js';
import { parseConfig } from '../../src/config/load.js';
import { kustomizeBuild, type K8sObject } from '../helpers/kustomize.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = join(ROOT, 'deploy', 'kubernetes');

/** Schema validators (kubernetes-models: the OpenAPI schemas of Kubernetes and the operator). */
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function validate(o: K8sObject): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(structuredClone(o) as never).validate();
}

/** The object `kind/name` of a rendering, as a typed model instance. */
function find<T>(objs: K8sObject[], Model: new (o: never) => T, kind: string, name: string): T {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return new Model(structuredClone(o) as never);
}
const all = <T>(objs: K8sObject[], Model: new (o: never) => T, kind: string): T[] =>
  objs.filter((o) => o.kind === kind).map((o) => new Model(structuredClone(o) as never));
const matches = (
  selector: Record<string, string> = {},
  labels: Record<string, string> = {},
): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

let overlayDir: string;
let base: K8sObject[];
let overlay: K8sObject[];

beforeAll(() => {
  base = kustomizeBuild(join(DEPLOY, 'base'));
  // The example overlay reads the keys from files nobody commits: make a pair, as the README says.
  overlayDir = mkdtempSync(join(tmpdir(), 'tw-k8s-'));
  cpSync(DEPLOY, overlayDir, { recursive: true });
  const keys = join(overlayDir, 'overlays', 'example', 'keys');
  writeFileSync(join(keys, 'hmac.key'), 'an-hmac-key-for-the-render-test-0123456789\n');
  writeKeyPair(keys);
  overlay = kustomizeBuild(join(overlayDir, 'overlays', 'example'));
});
afterAll(() => rmSync(overlayDir, { recursive: true, force: true }));

describe('deploy/kubernetes', () => {
  it('generated manifests match dashboards/ (one source of truth)', async () => {
    const generated = await generateKubernetesManifests(ROOT);
    expect([...generated.keys()].sort()).toEqual([
      'deploy/kubernetes/base/generated/dashboards.yaml',
      'deploy/kubernetes/base/generated/prometheusrule.yaml',
    ]);
    for (const [path, text] of generated) {
      // On failure: run `npm run k8s:generate` and commit the result.
      expect(readFileSync(join(ROOT, path), 'utf8'), path).toBe(text);
    }
    const rules = parse(
      readFileSync(join(ROOT, 'dashboards/prometheus/tokenwatch-rules.yml'), 'utf8'),
    ) as { groups: unknown };
    expect(find(base, PrometheusRule, 'PrometheusRule', 'tokenwatch').spec.groups).toEqual(
      rules.groups,
    );
  });

  it('every rendered manifest validates against the Kubernetes and Prometheus Operator schemas', () => {
    for (const objs of [base, overlay]) {
      expect(objs.length).toBeGreaterThan(8);
      for (const o of objs) expect(() => validate(o), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
    // The validator is live: a broken object fails it.
    const broken = find(overlay, StatefulSet, 'StatefulSet', 'tokenwatch');
    const sc = broken.spec!.template.spec!.containers[0]!.securityContext!;
    (sc as Record<string, unknown>).runAsNonRoot = 'yes';
    expect(() => broken.validate()).toThrow(/runAsNonRoot/);
    const noExpr = find(base, PrometheusRule, 'PrometheusRule', 'tokenwatch');
    delete (noExpr.spec.groups![1]!.rules![0] as { expr?: unknown }).expr;
    expect(() => noExpr.validate()).toThrow(/expr/);
  });

  it('the overlay sets namespace, image, keys Secret and operator labels', () => {
    for (const o of overlay)
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, o.kind).toBe('tokenwatch');
    const c = find(overlay, StatefulSet, 'StatefulSet', 'tokenwatch').spec!.template.spec!
      .containers[0]!;
    expect(c.image).toBe('registry.example.com/tokenwatch:0.1.0');
    // The strategic merge patch added an env var without dropping the base's (kustomize puts
    // the patch's new entries first).
    expect(c.env?.map((e) => e.name)).toEqual(['TOKENWATCH_REDIS_URL', 'NODE_ENV']);
    expect(c.volumeMounts).toHaveLength(5);
    const secret = find(overlay, Secret, 'Secret', 'tokenwatch-keys');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['hmac.key', 'signing.key']);
    const sm = find(overlay, ServiceMonitor, 'ServiceMonitor', 'tokenwatch');
    expect(sm.metadata?.labels?.release).toBe('kube-prometheus-stack');
    const rule = find(overlay, PrometheusRule, 'PrometheusRule', 'tokenwatch');
    expect(rule.metadata?.labels?.release).toBe('kube-prometheus-stack');
    expect(find(overlay, Namespace, 'Namespace', 'tokenwatch').metadata?.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
  });

  it('keys never live in the repository: the base has no Secret, keys/ is git-ignored', () => {
    expect(base.filter((o) => o.kind === 'Secret')).toEqual([]);
    const ignore = readFileSync(join(DEPLOY, 'overlays/example/keys/.gitignore'), 'utf8');
    expect(ignore.split('\n')).toEqual(expect.arrayContaining(['*', '!.gitignore']));
    expect(JSON.stringify(base)).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
  });

  it('the pod is hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    const sts = find(overlay, StatefulSet, 'StatefulSet', 'tokenwatch');
    const pod = sts.spec!.template.spec!;
    expect(sts.spec!.replicas).toBe(1);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const uid = pod.securityContext!.runAsUser!;
    expect(uid).toBeGreaterThan(0);
    for (const c of pod.containers) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.securityContext!.capabilities!.add).toBeUndefined();
      // docs/benchmarks.md, scenario 4: 643-670 MB RSS with a million live tokens.
      expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: '768Mi' });
      expect(c.resources?.limits?.memory).toBe('1536Mi');
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(c.image).not.toMatch(/:latest$|^[^:]+$/);
    }
    // The Dockerfile's user is the one the pod runs as (runAsNonRoot needs a numeric id).
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`USER ${uid}:`);
  });

  it('config, volumes and Secret items line up: ledger and checkpoint log on separate claims', () => {
    const sts = find(overlay, StatefulSet, 'StatefulSet', 'tokenwatch');
    const pod = sts.spec!.template.spec!;
    const c = pod.containers[0]!;
    const mounts = c.volumeMounts ?? [];
    const volumes = new Set<string>([
      ...(pod.volumes ?? []).map((v) => v.name),
      ...(sts.spec!.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? ''),
    ]);
    for (const m of mounts) expect(volumes, m.name).toContain(m.name);

    // The shipped config parses with tokenwatch's own loader.
    const cm = find(overlay, ConfigMap, 'ConfigMap', 'tokenwatch-config');
    const configMount = mounts.find((m) => m.name === 'config')!.mountPath;
    expect(c.args).toEqual(['serve', '--config', `${configMount}/tokenwatch.yaml`]);
    const config = parseConfig(cm.data!['tokenwatch.yaml']!);
    const mountOf = (path: string | undefined) =>
      mounts.find((m) => path?.startsWith(`${m.mountPath}/`));
    expect(mountOf(config.audit.path)?.name).toBe('data');
    expect(mountOf(config.audit.checkpointLog)?.name).toBe('checkpoints');
    const keysMount = mountOf(config.audit.signingKey)!;
    expect(keysMount.name).toBe('keys');
    expect(keysMount.readOnly).toBe(true);
    const keysVolume = (pod.volumes ?? []).find((v) => v.name === 'keys')!;
    // Only the owner (the tokenwatch user, fsGroup aside) reads the keys: 0400, not 400 = 0620.
    expect(keysVolume.secret?.defaultMode).toBe(0o400);
    const items = (keysVolume.secret?.items ?? []).map((i) => i.path);
    const secret = find(overlay, Secret, 'Secret', keysVolume.secret!.secretName!);
    const files = [config.audit.signingKey, ...config.audit.hmacKeys.map((k) => k.file)];
    expect(files).toHaveLength(2);
    for (const file of files) {
      const name = posix.relative(keysMount.mountPath, file ?? '');
      expect(items).toContain(name);
      expect(Object.keys(secret.data ?? {})).toContain(name);
    }
    // The read-only root file system leaves only the mounts writable; /tmp is one of them.
    expect(mounts.find((m) => m.mountPath === '/tmp')?.name).toBe('tmp');
    expect(c.ports?.find((p) => p.name === 'http')?.containerPort).toBe(config.server.port);
    expect(config.server.host).toBe('0.0.0.0');
  });

  it('Services select the pod; the ServiceMonitor scrapes it through exactly one Service', () => {
    const sts = find(overlay, StatefulSet, 'StatefulSet', 'tokenwatch');
    const podLabels = sts.spec!.template.metadata?.labels;
    expect(matches(sts.spec!.selector.matchLabels, podLabels)).toBe(true);
    const services = all(overlay, Service, 'Service');
    expect(services).toHaveLength(2);
    for (const s of services)
      expect(matches(s.spec?.selector, podLabels), s.metadata?.name).toBe(true);
    const governing = services.find((s) => s.metadata?.name === sts.spec!.serviceName);
    expect(governing?.spec?.clusterIP).toBe('None');
    const sm = find(overlay, ServiceMonitor, 'ServiceMonitor', 'tokenwatch');
    const scraped = services.filter((s) =>
      matches(sm.spec.selector.matchLabels, s.metadata?.labels),
    );
    expect(scraped.map((s) => s.metadata?.name)).toEqual(['tokenwatch']);
    const endpoint = sm.spec.endpoints?.[0];
    expect(scraped[0]?.spec?.ports?.map((p) => p.name)).toContain(endpoint?.port);
    expect(endpoint?.path).toBe('/metrics');
  });

  it('dashboards ship as ConfigMaps the Grafana sidecar picks up, byte for byte', () => {
    const cms = all(overlay, ConfigMap, 'ConfigMap').filter(
      (c) => c.metadata?.labels?.grafana_dashboard === '1',
    );
    expect(cms.map((c) => Object.keys(c.data ?? {})[0]).sort()).toEqual([
      'tokenwatch-cache-health.json',
      'tokenwatch-compliance.json',
      'tokenwatch-providers.json',
      'tokenwatch-token-churn.json',
    ]);
    for (const cm of cms) {
      const [file, text] = Object.entries(cm.data ?? {})[0]!;
      const source = readFileSync(join(ROOT, 'dashboards', file), 'utf8');
      expect(JSON.parse(text)).toEqual(JSON.parse(source));
      // ConfigMaps are capped at 1 MiB.
      expect(Buffer.byteLength(JSON.stringify(cm))).toBeLessThan(1024 * 1024);
    }
  });

  // kustomize is not on the npm registry; where kubectl is installed, its built-in kustomize
  // checks test/helpers/kustomize.ts object for object (it found the YAML 1.1 octal difference).
  it.runIf(hasKubectl())(
    'renders exactly what kubectl kustomize renders (where kubectl is installed)',
    () => {
      const key = (o: K8sObject): string =>
        `${o.kind}/${String(o.metadata.namespace ?? '')}/${o.metadata.name}`;
      const sorted = (objs: K8sObject[]): K8sObject[] =>
        [...objs].sort((a, b) => key(a).localeCompare(key(b)));
      for (const [dir, ours] of [
        [join(DEPLOY, 'base'), base],
        [join(overlayDir, 'overlays', 'example'), overlay],
      ] as const) {
        const text = execFileSync('kubectl', ['kustomize', dir], {
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        });
        const real = parseAllDocuments(text, { version: '1.1' }).map((d) => {
          const o = d.toJS() as K8sObject;
          // kustomize wraps a Secret's base64 at 70 columns; the API server's decoder skips
          // the line breaks, so they are not a difference.
          if (o.kind === 'Secret' && isObj(o.data))
            for (const [k, v] of Object.entries(o.data)) o.data[k] = String(v).replace(/\n/g, '');
          return o;
        });
        expect(sorted(ours)).toEqual(sorted(real));
      }
    },
  );

  it('the renderer refuses what it does not implement rather than render it wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-kust-'));
    try {
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n',
      );
      expect(() => kustomizeBuild(dir)).toThrow(/namePrefix/);
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nsecretGenerator:\n  - name: s\n    literals: [a=b]\n',
      );
      expect(() => kustomizeBuild(dir)).toThrow(/disableNameSuffixHash/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
