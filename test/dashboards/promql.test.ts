import { describe, expect, it } from 'vitest';
import {
  conditionOperands,
  exposed,
  familiesInExposition,
  metricNames,
  splitTopLevel,
  substitute,
  variableQueryToPromQL,
} from '../helpers/promql.js';

describe('PromQL helpers of the dashboard tests', () => {
  it('splits alert conditions into the operands that must have data', () => {
    expect(conditionOperands('tokenwatch_redis_up == 0')).toEqual(['tokenwatch_redis_up']);
    expect(conditionOperands('time() - tokenwatch_x_timestamp_seconds > 900')).toEqual([
      'time() - tokenwatch_x_timestamp_seconds',
    ]);
    expect(
      conditionOperands(`
        a:rate5m
          > on (job, instance, kind) (avg_over_time(a:rate5m[1d]) + 3 * stddev_over_time(a:rate5m[1d]))
        and on (job, instance, kind)
        a:rate5m > 1 # volume floor
      `),
    ).toEqual([
      'a:rate5m',
      'avg_over_time(a:rate5m[1d]) + 3 * stddev_over_time(a:rate5m[1d])',
      'a:rate5m',
    ]);
    expect(
      conditionOperands(
        '(x > bool 1) or on (le) absent(y{a="b"}) > ignoring (le) group_left (kind) z',
      ),
    ).toEqual(['x', 'y{a="b"}', 'z']);
    expect(conditionOperands('sum by (kind) (rate(errors_total[5m])) unless orphans')).toEqual([
      'sum by (kind) (rate(errors_total[5m]))',
      'orphans',
    ]);
  });

  it('does not split at operators inside strings, selectors or function calls', () => {
    expect(splitTopLevel('x{event=~"a|b", reason!="x > y"} / on (a) y')).toHaveLength(1);
    expect(splitTopLevel('clamp_min(a - b > 0, 0)')).toHaveLength(1);
    expect(splitTopLevel('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))')).toEqual([
      'histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))',
    ]);
    expect(splitTopLevel('a >= 1 and b != 2')).toEqual(['a', '1', 'b', '2']);
  });

  it('substitutes every Grafana variable syntax and refuses unknown ones', () => {
    const vars = { job: 'tw', instance: 'h:1', __rate_interval: '1m', kind: '.*' };
    expect(
      substitute(
        'rate(x{job=~"$job", instance=~"${instance}", kind=~"[[kind]]"}[$__rate_interval])',
        vars,
      ),
    ).toBe('rate(x{job=~"tw", instance=~"h:1", kind=~".*"}[1m])');
    expect(substitute('x{job=~"${job:regex}"}', vars)).toBe('x{job=~"tw"}');
    expect(() => substitute('x[$__range]', vars)).toThrow(/\$__range/);
  });

  it('turns Grafana variable queries into PromQL where they are PromQL', () => {
    expect(variableQueryToPromQL('label_values(up{job=~"$job"}, instance)')).toBe(
      'count by (instance) (up{job=~"$job"})',
    );
    expect(variableQueryToPromQL('query_result(topk(3, x))')).toBe('topk(3, x)');
    expect(variableQueryToPromQL('label_values(job)')).toBeUndefined();
    expect(variableQueryToPromQL('label_names()')).toBeUndefined();
  });

  it('finds the tokenwatch metric names an expression reads', () => {
    expect(
      metricNames(
        'sum(rate(tokenwatch_a_total{rule="tokenwatch_not_a_metric"}[5m])) / tokenwatch:b:rate5m',
      ),
    ).toEqual(['tokenwatch_a_total', 'tokenwatch:b:rate5m']);
    const fams = familiesInExposition(
      [
        '# HELP tokenwatch_h_seconds h',
        '# TYPE tokenwatch_h_seconds histogram',
        'tokenwatch_h_seconds_bucket{le="+Inf",kind="a"} 0',
        'tokenwatch_h_seconds_count{kind="a"} 0',
        '# TYPE tokenwatch_declared_only_total counter',
        '',
      ].join('\n'),
    );
    expect(exposed('tokenwatch_declared_only_total', fams)).toBe(false);
    expect(exposed('tokenwatch_h_seconds_bucket', fams)).toBe(true);
    expect(exposed('tokenwatch_h_seconds', fams)).toBe(true);
    expect(exposed('tokenwatch_other_total', fams)).toBe(false);
  });
});
