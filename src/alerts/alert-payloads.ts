import type { Finding } from '../domain/finding.js';

/**
 * Alertmanager v2 alert for a finding (POST /api/v2/alerts). `endsAt` set = resolved.
 * Labels are bounded (rule, severity, kind, criterion); the finding id makes each alert unique.
 */
export function toAlertmanager(
  f: Finding,
  generatorURL: string | undefined,
): Record<string, unknown> {
  const labels: Record<string, string> = {
    alertname: 'TokenwatchFinding',
    rule: f.rule,
    severity: f.severity,
    finding_id: f.id,
    criterion: f.criteria.join(','),
  };
  if (f.kind) labels.kind = f.kind;
  return {
    labels,
    annotations: {
      summary: f.summary,
      description: `${f.summary} (SOC 2 ${f.criteria.join(', ')}; evidence seqs ${f.evidenceSeqs.join(', ') || 'none'})`,
    },
    startsAt: new Date(f.openedAt).toISOString(),
    ...(f.state === 'resolved' ? { endsAt: new Date(f.at).toISOString() } : {}),
    ...(generatorURL ? { generatorURL } : {}),
  };
}

/** The generic webhook body: the finding itself, never a token (findings hold fingerprints). */
export function toWebhook(f: Finding): Record<string, unknown> {
  return { type: `finding.${f.state}`, finding: f };
}
