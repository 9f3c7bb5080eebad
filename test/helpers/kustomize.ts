import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * The subset of kustomize (https://kubectl.docs.kubernetes.io/references/kustomize/) that
 * deploy/kubernetes uses, rendered in-process: no kustomize or kubectl binary is installable
 * from the npm registry, and the tests must run offline. Anything outside the subset throws,
 * so a manifest change that needs more of kustomize fails here instead of being rendered wrong.
 *
 * Supported, with kustomize's semantics:
 * - `resources`: YAML files (multi-document) and directories holding a kustomization;
 * - `namespace`: set on every namespaced object;
 * - `labels` with `includeSelectors: false` (metadata labels only);
 * - `images`: `newName` / `newTag` / `digest` for containers and initContainers of pod templates;
 * - `secretGenerator` with `files` (key = file name or `key=path`), only with
 *   `generatorOptions.disableNameSuffixHash: true` (no hash suffix, no reference rewriting);
 * - `patches` with `path` and no `target`: strategic merge patches for built-in kinds (lists
 *   merged by their Kubernetes patchMergeKey for the fields listed in MERGE_KEYS, others
 *   replaced; `null` deletes) and JSON merge patches (RFC 7386) for custom resources.
 */

export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

const SUPPORTED = new Set([
  'apiVersion',
  'kind',
  'resources',
  'namespace',
  'labels',
  'images',
  'secretGenerator',
  'generatorOptions',
  'patches',
]);

/** Kinds without a namespace among those we render. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'PersistentVolume',
]);

/** patchMergeKey of the list fields we patch (k8s.io/api struct tags), by field name. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
};

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function readYamlFile(path: string): K8sObject[] {
  // YAML 1.1, as kustomize's go-yaml reads it: `defaultMode: 0400` is octal (256) there, while
  // YAML 1.2 (this library's default) reads the decimal 400 (0620).
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { version: '1.1' });
  const out: K8sObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${path}: ${d.errors[0]?.message}`);
    const v: unknown = d.toJS();
    if (v === null || v === undefined) continue;
    if (!isMap(v) || typeof v.kind !== 'string' || typeof v.apiVersion !== 'string')
      throw new Error(`${path}: a document without apiVersion/kind`);
    out.push(v as K8sObject);
  }
  return out;
}

function strategicMerge(base: unknown, patch: unknown, field?: string): unknown {
  if (Array.isArray(patch)) {
    const key = field === undefined ? undefined : MERGE_KEYS[field];
    if (!key || !Array.isArray(base)) return structuredClone(patch);
    const out = structuredClone(base) as Json[];
    const added: Json[] = [];
    for (const item of patch as Json[]) {
      const i = out.findIndex((b) => isMap(b) && b[key] === item[key]);
      if (i < 0) added.push(structuredClone(item));
      else out[i] = strategicMerge(out[i], item) as Json;
    }
    // kustomize (kyaml) puts the elements new to the list before the existing ones (checked
    // against kubectl kustomize, kustomize v5.5.0, with one added env entry).
    return [...added, ...out];
  }
  if (!isMap(patch)) return structuredClone(patch);
  const out: Json = isMap(base) ? structuredClone(base) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) throw new Error(`strategic merge directive ${k} is not supported`);
    if (v === null) delete out[k];
    else out[k] = strategicMerge(out[k], v, k);
  }
  return out;
}

/** RFC 7386: maps merge, everything else (lists too) replaces, null deletes. */
function jsonMerge(base: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const out: Json = isMap(base) ? structuredClone(base) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMerge(out[k], v);
  }
  return out;
}

const builtIn = (apiVersion: string): boolean =>
  !apiVersion.includes('/') ||
  /\.k8s\.io\//.test(apiVersion) ||
  /^(apps|batch|policy|autoscaling)\//.test(apiVersion);

function podSpecs(o: K8sObject): Json[] {
  const spec = o.spec;
  if (!isMap(spec)) return [];
  if (isMap(spec.template) && isMap(spec.template.spec)) return [spec.template.spec];
  return [];
}

/** Renders the kustomization in `dir` like `kustomize build dir` would, for the subset above. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
    .map((f) => join(dir, f))
    .find((f) => existsSync(f));
  if (!file) throw new Error(`${dir}: no kustomization`);
  const k = readYamlFile(file)[0] as unknown as Json;
  for (const key of Object.keys(k))
    if (!SUPPORTED.has(key)) throw new Error(`${file}: '${key}' is outside the rendered subset`);

  let objects: K8sObject[] = [];
  for (const r of (k.resources as string[] | undefined) ?? []) {
    const path = join(dir, r);
    objects.push(...(statSync(path).isDirectory() ? kustomizeBuild(path) : readYamlFile(path)));
  }

  const genOptions = (k.generatorOptions as Json | undefined) ?? {};
  for (const g of (k.secretGenerator as Json[] | undefined) ?? []) {
    if (genOptions.disableNameSuffixHash !== true)
      throw new Error(
        `${file}: secretGenerator needs disableNameSuffixHash: true in this renderer`,
      );
    for (const key of Object.keys(g))
      if (!['name', 'type', 'files'].includes(key))
        throw new Error(`${file}: secretGenerator.${key} is outside the rendered subset`);
    const data: Record<string, string> = {};
    for (const f of (g.files as string[] | undefined) ?? []) {
      const [name, path] = f.includes('=')
        ? (f.split('=', 2) as [string, string])
        : [basename(f), f];
      data[name] = readFileSync(join(dir, path)).toString('base64');
    }
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: String(g.name) },
      type: g.type ?? 'Opaque',
      data,
    });
  }

  for (const p of (k.patches as Json[] | undefined) ?? []) {
    if (p.target !== undefined || typeof p.path !== 'string')
      throw new Error(`${file}: only patches with a path and no target are rendered`);
    for (const patch of readYamlFile(join(dir, p.path))) {
      const i = objects.findIndex(
        (o) =>
          o.kind === patch.kind &&
          o.apiVersion === patch.apiVersion &&
          o.metadata.name === patch.metadata.name,
      );
      if (i < 0) throw new Error(`${p.path}: no ${patch.kind}/${patch.metadata.name} to patch`);
      const merge = builtIn(patch.apiVersion) ? strategicMerge : jsonMerge;
      objects[i] = merge(objects[i], patch) as K8sObject;
    }
  }

  if (typeof k.namespace === 'string') {
    const ns = k.namespace;
    objects = objects.map((o) =>
      CLUSTER_SCOPED.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace: ns } },
    );
  }

  for (const l of (k.labels as Json[] | undefined) ?? []) {
    if (l.includeSelectors !== false || l.includeTemplates !== undefined)
      throw new Error(`${file}: labels need includeSelectors: false (and no includeTemplates)`);
    const pairs = l.pairs as Record<string, string>;
    for (const o of objects) o.metadata.labels = { ...o.metadata.labels, ...pairs };
  }

  for (const img of (k.images as Json[] | undefined) ?? []) {
    for (const o of objects) {
      for (const spec of podSpecs(o)) {
        for (const c of [
          ...((spec.containers as Json[] | undefined) ?? []),
          ...((spec.initContainers as Json[] | undefined) ?? []),
        ]) {
          const image = c.image as string;
          const at = image.indexOf('@');
          const colon = image.lastIndexOf(':');
          const end = at >= 0 ? at : colon > image.lastIndexOf('/') ? colon : image.length;
          const name = image.slice(0, end);
          if (name !== img.name) continue;
          const newName = (img.newName as string | undefined) ?? name;
          if (typeof img.digest === 'string') c.image = `${newName}@${img.digest}`;
          else if (typeof img.newTag === 'string') c.image = `${newName}:${img.newTag}`;
          else c.image = `${newName}${image.slice(end)}`;
        }
      }
    }
  }
  return objects;
}
