import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS_DIR, RULES_FILE, RULE_TESTS_DIR, loadRules } from '../helpers/promql.js';

/**
 * The alert rules are checked and unit-tested by promtool (`.ci/run` installs Debian's
 * `prometheus` package, which ships it). Every alert needs at least one promtool case in which it
 * fires and one in which it must not.
 */

interface AlertRuleTest {
  alertname: string;
  eval_time: string;
  exp_alerts?: unknown[] | null;
}
interface RuleTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: AlertRuleTest[] }[];
}

const testFiles = readdirSync(RULE_TESTS_DIR)
  .filter((f) => f.endsWith('.yml'))
  .sort()
  .map((f) => join(RULE_TESTS_DIR, f));
const alerts = loadRules().filter((r) => r.alert !== undefined);

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) {
    throw new Error(
      `cannot run promtool (${r.error.message}); install Debian's prometheus package (.ci/run does)`,
    );
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('Prometheus rules', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', RULES_FILE);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${loadRules().length} rules found`);
  });

  it('pass promtool check config for the docker-compose Prometheus', () => {
    const r = promtool('check', 'config', join(DASHBOARDS_DIR, 'prometheus/prometheus.yml'));
    expect(r.status, r.output).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const r = promtool('test', 'rules', ...testFiles);
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toContain('FAILED');
  });

  it('have a firing and a not-firing promtool case for every alert', () => {
    const firing = new Set<string>();
    const silent = new Set<string>();
    for (const file of testFiles) {
      const doc = parse(readFileSync(file, 'utf8')) as RuleTestFile;
      expect(doc.rule_files).toEqual(['../tokenwatch-rules.yml']);
      for (const t of doc.tests) {
        for (const c of t.alert_rule_test ?? []) {
          if ((c.exp_alerts ?? []).length > 0) firing.add(c.alertname);
          else silent.add(c.alertname);
        }
      }
    }
    const names = alerts.map((a) => a.alert as string);
    expect(names.length).toBeGreaterThanOrEqual(9);
    expect(names.filter((n) => !firing.has(n))).toEqual([]);
    expect(names.filter((n) => !silent.has(n))).toEqual([]);
    // A test case for an alert that does not exist would pass vacuously.
    expect([...firing, ...silent].filter((n) => !names.includes(n))).toEqual([]);
  });

  it('give every alert a severity, summary, description and a runbook section', () => {
    const runbook = readFileSync(new URL('../../docs/runbook.md', import.meta.url), 'utf8');
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) =>
        (m[1] as string)
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const problems: string[] = [];
    for (const a of alerts) {
      const name = a.alert as string;
      if (!['warning', 'critical'].includes(a.labels?.severity ?? ''))
        problems.push(`${name}: severity`);
      if (!a.annotations?.summary) problems.push(`${name}: summary`);
      if (!a.annotations?.description) problems.push(`${name}: description`);
      const url = a.annotations?.runbook_url ?? '';
      const m = /\/docs\/runbook\.md#([\w-]+)$/.exec(url);
      if (!m) problems.push(`${name}: runbook_url ${url}`);
      else if (!anchors.has(m[1] as string)) problems.push(`${name}: no runbook section #${m[1]}`);
      else if (m[1] !== name.toLowerCase()) problems.push(`${name}: runbook anchor #${m[1]}`);
    }
    expect(problems).toEqual([]);
  });
});
