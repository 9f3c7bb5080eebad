import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * Just enough PromQL and Grafana handling for the dashboard and rule tests: find every
 * expression in the dashboards and rule files, substitute Grafana variables, split alert
 * conditions into the operands that must have data. No full PromQL parser: Prometheus itself
 * parses every expression in the integration test.
 */

export const DASHBOARDS_DIR = new URL('../../dashboards/', import.meta.url).pathname;
export const RULES_FILE = join(DASHBOARDS_DIR, 'prometheus/tokenwatch-rules.yml');
export const RULE_TESTS_DIR = join(DASHBOARDS_DIR, 'prometheus/tests');

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  tags?: string[];
  panels: GrafanaPanel[];
  templating: { list: GrafanaVariable[] };
}

export interface LoadedDashboard {
  file: string;
  dashboard: GrafanaDashboard;
}

/** Every `dashboards/*.json`. */
export function loadDashboards(dir = DASHBOARDS_DIR): LoadedDashboard[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      file,
      dashboard: JSON.parse(readFileSync(join(dir, file), 'utf8')) as GrafanaDashboard,
    }));
}

/** Panels including those nested in (collapsed) rows. */
export function allPanels(d: GrafanaDashboard): GrafanaPanel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Where an expression comes from, for failure messages. */
export interface FoundExpr {
  where: string;
  expr: string;
}

/** The text of a query variable (Grafana stores a string or `{ query }`). */
export function variableQuery(v: GrafanaVariable): string | undefined {
  return typeof v.query === 'string' ? v.query : v.query?.query;
}

/** Every `targets[].expr` of every panel, and every Prometheus query variable. */
export function dashboardExpressions(dashboards = loadDashboards()): {
  panels: FoundExpr[];
  variables: FoundExpr[];
} {
  const panels: FoundExpr[] = [];
  const variables: FoundExpr[] = [];
  for (const { file, dashboard } of dashboards) {
    for (const p of allPanels(dashboard)) {
      for (const t of p.targets ?? []) {
        if (t.expr !== undefined)
          panels.push({ where: `${file} panel "${p.title}" ${t.refId ?? '?'}`, expr: t.expr });
      }
    }
    for (const v of dashboard.templating.list) {
      const q = variableQuery(v);
      if (v.type === 'query' && q)
        variables.push({ where: `${file} variable $${v.name}`, expr: q });
    }
  }
  return { panels, variables };
}

export interface RuleSpec {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The rules of a Prometheus rule file, in file order. */
export function loadRules(file = RULES_FILE): RuleSpec[] {
  const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: RuleSpec[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/**
 * Grafana variable syntaxes `$name`, `${name}`, `${name:format}` and `[[name]]` replaced from
 * `vars`; throws on a variable it has no value for, so nothing reaches Prometheus half-done.
 */
export function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  return expr.replace(
    /\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)(?::[\w]+)?\]\]|\$(\w+)/g,
    (whole, a?: string, b?: string, c?: string) => {
      const name = (a ?? b ?? c) as string;
      const v = vars[name];
      if (v === undefined) throw new Error(`no value for variable ${whole} in: ${expr}`);
      return v;
    },
  );
}

/**
 * The PromQL behind a Grafana Prometheus variable query, or undefined when it is not PromQL
 * (`label_names()`, `metrics(...)`, `label_values(label)` read the label API).
 * `label_values(sel, label)` -> `count by (label) (sel)`; `query_result(q)` -> `q`.
 */
export function variableQueryToPromQL(q: string): string | undefined {
  const s = q.trim();
  const lv = /^label_values\(\s*([\s\S]+)\s*,\s*([A-Za-z_]\w*)\s*\)$/.exec(s);
  if (lv) return `count by (${lv[2]}) (${(lv[1] as string).trim()})`;
  const qr = /^query_result\(([\s\S]+)\)$/.exec(s);
  if (qr) return (qr[1] as string).trim();
  if (/^(label_values|label_names|metrics)\(/.test(s)) return undefined;
  return s;
}

const IDENT = /[A-Za-z0-9_:]/;

/** Replaces `#` comments (outside string literals) by spaces. */
function stripComments(expr: string): string {
  const blank = blankStringsAndComments(expr);
  let out = '';
  for (let i = 0; i < expr.length; i++) {
    out += blank[i] === ' ' && expr[i] !== ' ' && !inString(blank, i) ? ' ' : expr[i];
  }
  return out;
}

/** Whether position `i` of a blanked expression lies inside a (blanked) string literal. */
function inString(blank: string, i: number): boolean {
  let open: string | undefined;
  for (let j = 0; j < i; j++) {
    const ch = blank[j] as string;
    if (open === undefined && (ch === '"' || ch === "'" || ch === '`')) open = ch;
    else if (open !== undefined && ch === open) open = undefined;
  }
  return open !== undefined;
}

/** Removes string literals and `#` comments, keeping positions (replaced by spaces). */
function blankStringsAndComments(expr: string): string {
  let out = '';
  let i = 0;
  while (i < expr.length) {
    const ch = expr[i] as string;
    if (ch === '"' || ch === "'" || ch === '`') {
      let j = i + 1;
      while (j < expr.length && expr[j] !== ch) j += expr[j] === '\\' && ch !== '`' ? 2 : 1;
      out += `${ch}${' '.repeat(Math.max(0, Math.min(j, expr.length) - i - 1))}${ch}`;
      i = j + 1;
      continue;
    }
    if (ch === '#') {
      let j = i;
      while (j < expr.length && expr[j] !== '\n') j += 1;
      out += ' '.repeat(j - i);
      i = j;
      continue;
    }
    out += ch;
    i += 1;
  }
  return out.slice(0, expr.length);
}

const COMPARISONS = ['==', '!=', '>=', '<=', '>', '<'];
const SET_OPS = ['and', 'or', 'unless'];

/**
 * Splits `expr` at its top-level comparison (`== != > < >= <=`) and set (`and or unless`)
 * operators, with their `bool` / `on(...)` / `ignoring(...)` / `group_left(...)` modifiers.
 * Returns one part when there is none.
 */
export function splitTopLevel(source: string): string[] {
  const expr = stripComments(source);
  const blank = blankStringsAndComments(expr);
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let i = 0;
  while (i < blank.length) {
    const ch = blank[i] as string;
    if (ch === '(' || ch === '[' || ch === '{') depth += 1;
    else if (ch === ')' || ch === ']' || ch === '}') depth -= 1;
    if (depth !== 0 || ch === ')' || ch === ']' || ch === '}') {
      i += 1;
      continue;
    }
    let opLen = 0;
    const cmp = COMPARISONS.find((c) => blank.startsWith(c, i));
    if (cmp && !(cmp === '!=' && blank[i + 2] === '~')) opLen = cmp.length;
    else {
      const prev = i === 0 ? ' ' : (blank[i - 1] as string);
      const word = SET_OPS.find(
        (w) => blank.startsWith(w, i) && !IDENT.test(blank[i + w.length] ?? ' '),
      );
      if (word && !IDENT.test(prev)) opLen = word.length;
    }
    if (opLen === 0) {
      i += 1;
      continue;
    }
    parts.push(expr.slice(start, i));
    const rest = blank.slice(i + opLen);
    const mod =
      /^\s*(?:bool\b)?\s*(?:(?:on|ignoring)\s*\([^)]*\))?\s*(?:(?:group_left|group_right)\b\s*(?:\([^)]*\))?)?/.exec(
        rest,
      );
    i = i + opLen + (mod?.[0].length ?? 0);
    start = i;
  }
  parts.push(expr.slice(start));
  return parts.map((p) => p.trim());
}

/** `(x)` -> `x` when the outer parentheses enclose the whole expression. */
function unwrap(expr: string): string {
  let e = expr.trim();
  for (;;) {
    if (!e.startsWith('(') || !e.endsWith(')')) return e;
    const blank = blankStringsAndComments(e);
    let depth = 0;
    let closes = -1;
    for (let i = 0; i < blank.length; i++) {
      if (blank[i] === '(') depth += 1;
      else if (blank[i] === ')') {
        depth -= 1;
        if (depth === 0) {
          closes = i;
          break;
        }
      }
    }
    if (closes !== e.length - 1) return e;
    e = e.slice(1, -1).trim();
  }
}

/**
 * The operands of an alert condition that must return data when the metrics exist: the
 * condition split at every comparison and set operator (recursively through parentheses),
 * without scalar literals; `absent(x)` / `absent_over_time(x)` contribute `x`.
 */
export function conditionOperands(expr: string): string[] {
  const parts = splitTopLevel(expr);
  if (parts.length === 1) {
    const inner = unwrap(parts[0] as string);
    if (inner !== parts[0]) return conditionOperands(inner);
    const absent = /^absent(?:_over_time)?\(([\s\S]*)\)$/.exec(inner);
    if (absent) return conditionOperands(absent[1] as string);
    if (inner === '' || /^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(inner)) return [];
    return [inner];
  }
  return parts.flatMap((p) => conditionOperands(p));
}

/** Metric and recording-rule names (`tokenwatch_*`, `tokenwatch:*`) an expression reads. */
export function metricNames(expr: string): string[] {
  const blank = blankStringsAndComments(expr);
  return [...new Set(blank.match(/(?<![A-Za-z0-9_:])tokenwatch[_:][A-Za-z0-9_:]*/g) ?? [])];
}

/**
 * Metric families with at least one sample in a Prometheus text exposition. A family that is
 * registered but has no series yet (`# TYPE` only, e.g. per-provider metrics with no provider
 * configured) gives a dashboard nothing to show, so it does not count.
 */
export function familiesInExposition(text: string): Set<string> {
  const declared = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) \S+$/gm)) declared.add(m[1] as string);
  const out = new Set<string>();
  for (const m of text.matchAll(/^([A-Za-z_:][\w:]*)(?:\{[^\n]*\})? \S+/gm)) {
    const name = m[1] as string;
    const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
    out.add(declared.has(name) || base === undefined || !declared.has(base) ? name : base);
  }
  return out;
}

/** Whether `name` (maybe a `_bucket`/`_sum`/`_count` series) belongs to one of `families`. */
export function exposed(name: string, families: ReadonlySet<string>): boolean {
  if (families.has(name)) return true;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  return base !== undefined && families.has(base);
}
