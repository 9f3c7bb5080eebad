import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  DASHBOARDS_DIR,
  allPanels,
  dashboardExpressions,
  loadDashboards,
  variableQuery,
  type GrafanaPanel,
} from '../helpers/promql.js';

const dashboards = loadDashboards();
const UNITS = new Set(['s', 'ops', 'percentunit', 'short']);
const DS_UID = '${datasource}';

/** `metric{...}` selectors of tokenwatch metrics (and `up`) in an expression. */
function selectors(expr: string): { name: string; matchers: string }[] {
  return [...expr.matchAll(/(?<![\w:])(tokenwatch_[\w]+|up)\s*(\{[^}]*\})?/g)].map((m) => ({
    name: m[1] as string,
    matchers: m[2] ?? '',
  }));
}

describe('Grafana dashboards', () => {
  it('are the four tokenwatch dashboards on the current schema', () => {
    expect(dashboards.map((d) => d.dashboard.uid)).toEqual([
      'tokenwatch-cache-health',
      'tokenwatch-compliance',
      'tokenwatch-providers',
      'tokenwatch-token-churn',
    ]);
    for (const { dashboard: d } of dashboards) {
      expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
      expect(d.tags).toContain('tokenwatch');
      expect((d as unknown as { id: unknown }).id).toBeNull();
    }
  });

  it('take the Prometheus data source, job and instance as variables', () => {
    for (const { file, dashboard: d } of dashboards) {
      const vars = new Map(d.templating.list.map((v) => [v.name, v]));
      expect(vars.get('datasource'), file).toMatchObject({
        type: 'datasource',
        query: 'prometheus',
      });
      for (const name of ['job', 'instance']) expect(vars.get(name)?.type, file).toBe('query');
      for (const v of d.templating.list.filter((x) => x.type === 'query')) {
        expect(v.datasource?.uid, `${file} $${v.name}`).toBe(DS_UID);
        expect(variableQuery(v), `${file} $${v.name}`).toMatch(/^label_values\(/);
      }
    }
  });

  it('give every panel a description, a unit, the datasource variable and a query', () => {
    const problems: string[] = [];
    for (const { file, dashboard: d } of dashboards) {
      const ids = new Set<number>();
      for (const p of allPanels(d)) {
        const where = `${file} "${p.title}"`;
        if (ids.has(p.id)) problems.push(`${where}: duplicate panel id ${p.id}`);
        ids.add(p.id);
        if (p.type === 'row') continue;
        if (!p.description || p.description.length < 20) problems.push(`${where}: no description`);
        const unit = p.fieldConfig?.defaults?.unit;
        if (!unit || !UNITS.has(unit)) problems.push(`${where}: unit ${String(unit)}`);
        if (p.datasource?.uid !== DS_UID) problems.push(`${where}: datasource not ${DS_UID}`);
        if (!p.targets?.length) problems.push(`${where}: no targets`);
        for (const t of p.targets ?? []) {
          if (t.datasource?.uid !== DS_UID) problems.push(`${where} ${t.refId}: datasource`);
          if (!t.expr) problems.push(`${where} ${t.refId}: no expr`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('lay panels out without overlaps', () => {
    const overlaps: string[] = [];
    for (const { file, dashboard: d } of dashboards) {
      const ps = d.panels;
      const hit = (a: GrafanaPanel, b: GrafanaPanel): boolean =>
        a.gridPos.x < b.gridPos.x + b.gridPos.w &&
        b.gridPos.x < a.gridPos.x + a.gridPos.w &&
        a.gridPos.y < b.gridPos.y + b.gridPos.h &&
        b.gridPos.y < a.gridPos.y + a.gridPos.h;
      for (const [i, a] of ps.entries()) {
        for (const b of ps.slice(i + 1)) {
          if (hit(a, b)) overlaps.push(`${file}: "${a.title}" / "${b.title}"`);
        }
        if (a.gridPos.x + a.gridPos.w > 24) overlaps.push(`${file}: "${a.title}" too wide`);
      }
    }
    expect(overlaps).toEqual([]);
  });

  it('follow the PromQL conventions', () => {
    const problems: string[] = [];
    const { panels, variables } = dashboardExpressions(dashboards);
    for (const { where, expr } of panels) {
      for (const s of selectors(expr)) {
        // Every selector is scoped to the chosen job and instance.
        if (!s.matchers.includes('job=~"$job"') || !s.matchers.includes('instance=~"$instance"'))
          problems.push(`${where}: ${s.name} not filtered by $job and $instance`);
      }
      // rate()/increase() only over counters (and histogram buckets, sums, counts).
      for (const m of expr.matchAll(/\b(rate|irate|increase)\(\s*([\w:]+)/g)) {
        if (!/_(total|bucket|count|sum)$/.test(m[2] as string))
          problems.push(`${where}: ${m[1]} over non-counter ${m[2]}`);
      }
      // Quantiles aggregate buckets by le before histogram_quantile.
      const quantiles = expr.match(/histogram_quantile\(/g)?.length ?? 0;
      const byLe = expr.match(/histogram_quantile\(\s*[\d.]+\s*,\s*sum by \(le\b/g)?.length ?? 0;
      if (quantiles !== byLe)
        problems.push(`${where}: histogram_quantile without sum by (le, ...)`);
      if (/\[\d+[smhd]\]/.test(expr)) problems.push(`${where}: fixed range instead of a variable`);
    }
    for (const { where, expr } of variables) {
      if (!/^label_values\(/.test(expr)) problems.push(`${where}: not a label_values query`);
    }
    expect(problems).toEqual([]);
  });

  it('are provisioned from this folder with the Prometheus data source', () => {
    const ds = parse(
      readFileSync(join(DASHBOARDS_DIR, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
    ) as { apiVersion: number; datasources: { type: string; uid: string; url: string }[] };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const prov = parse(
      readFileSync(join(DASHBOARDS_DIR, 'grafana/provisioning/dashboards/tokenwatch.yml'), 'utf8'),
    ) as { providers: { type: string; options: { path: string } }[] };
    expect(prov.providers[0]).toMatchObject({
      type: 'file',
      options: { path: '/var/lib/grafana/dashboards/tokenwatch' },
    });
    const compose = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
    expect(compose).toContain('./dashboards:/var/lib/grafana/dashboards/tokenwatch:ro');
  });
});
