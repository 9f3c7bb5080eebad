import { cellTime, duration, esc, num, percent, table, time, type Column } from './html-format.js';
import { findingColumns, section } from './report-html-parts.js';
import {
  integritySection,
  inventorySection,
  revocationSection,
  summaryCards,
} from './report-html-sections.js';
import { ttlSection } from './report-html-ttl.js';
import { cacheHealthSectionHtml } from './report-cache-health.js';
import { REPORT_CSS } from './report-style.js';
import type { BlindSpot, FindingRow, Soc2Report } from './report-types.js';
import { blindSpotChart } from './svg-charts.js';

/**
 * The Content-Security-Policy of the report page, also sent as a header by the HTTP route: no
 * script, no fetch, no external anything; inline styles and data: images only. The page can be
 * mailed to an auditor and opened anywhere.
 */
export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

function anomalySection(r: Soc2Report): string {
  const a = r.anomalies;
  return section(
    5,
    'anomalies',
    'Unattributed tokens and use after revocation',
    ['CC7.2'],
    'Tokens written to Redis that no identity-provider event explains, tokens written after their grant was revoked, and refresh-token reuse reported by providers.',
    `<h3>Unattributed tokens</h3>${table(a.unattributed, findingColumns, 'None.')}<h3>Writes after revocation</h3>${table(a.writeAfterRevocation, findingColumns, 'None.')}<h3>Refresh token reuse</h3>${table(a.refreshReuse, findingColumns, 'None.')}`,
  );
}

function responseSection(r: Soc2Report): string {
  const x = r.response;
  const ev = Object.entries(x.evicted).filter(([, n]) => n > 0);
  const evicted =
    ev.length === 0
      ? '<p class="none">No token was evicted.</p>'
      : `<p>${ev.map(([k, n]) => `${esc(k)}: <strong>${num(n)}</strong>`).join(' · ')} evicted by Redis under memory pressure.</p>`;
  const flushes =
    x.flushes.length === 0
      ? ''
      : `<h3>Keyspace flushes</h3>${table(
          x.flushes,
          [
            { head: 'Seq', numeric: true, cell: (f) => `#${f.seq}` },
            { head: 'Time', cell: (f) => cellTime(f.time) },
            { head: 'Node', cell: (f) => esc(f.node ?? '—') },
          ],
          '',
        )}`;
  return section(
    6,
    'response',
    'Churn spikes and evictions, and their resolution',
    ['CC7.3', 'CC7.4'],
    'Anomalies that were evaluated and responded to: each finding with when it opened, when it was resolved and how long that took.',
    `<h3>Churn spikes</h3>${table(x.churnSpikes, findingColumns, 'None.')}<h3>Evictions</h3>${evicted}${table(x.evictionFindings, findingColumns, '')}${flushes}`,
  );
}

function blindSpotSection(r: Soc2Report): string {
  const b = r.blindSpots;
  const t = table(
    b.windows,
    [
      {
        head: 'Kind',
        cell: (w) =>
          `<span class="badge ${w.type === 'keyspace.gap' ? 'bad' : 'warn'}">${w.type === 'keyspace.gap' ? 'blind spot' : 'ledger degraded'}</span>`,
      },
      { head: 'From', cell: (w) => cellTime(w.start) },
      { head: 'To', cell: (w) => cellTime(w.end) },
      { head: 'Duration', numeric: true, cell: (w) => esc(duration(w.durationMs)) },
      { head: 'Node', cell: (w) => `<span class="t">${esc(w.node ?? '—')}</span>` },
      { head: 'Reason', cell: (w) => esc(w.reason ?? '—') },
      { head: 'Reconciliation found', cell: (w) => reconciliation(w) },
      {
        head: 'Dropped',
        numeric: true,
        cell: (w) => (w.droppedRecords === null ? '—' : num(w.droppedRecords)),
      },
      { head: 'Record', numeric: true, cell: (w) => `<span class="mono">#${w.seq}</span>` },
    ],
    'None: tokenwatch observed Redis and wrote the ledger for the whole period.',
  );
  const skews =
    b.clockSkews.length === 0
      ? ''
      : `<h3>Clock steps backwards</h3>${table(
          b.clockSkews,
          [
            { head: 'Record', numeric: true, cell: (c) => `#${c.seq}` },
            { head: 'Time', cell: (c) => cellTime(c.time) },
            { head: 'Backwards', numeric: true, cell: (c) => esc(duration(c.backwardsMs)) },
          ],
          '',
        )}`;
  return section(
    7,
    'blind-spots',
    'Blind spots: gaps in time and sequence',
    ['CC7.2'],
    `Windows in which tokenwatch could not observe Redis (reconciled afterwards by SCAN) or could not write the ledger. Observed ${esc(percent(b.coverage))} of the period; ${esc(duration(b.totalMs))} unobserved. The record sequence of the period has no gap (section 1).`,
    `${blindSpotChart(b.windows, r.period.from, r.period.to)}${t}${skews}`,
  );
}

/** What reconciliation found after a blind spot, per change and kind. */
function reconciliation(w: BlindSpot): string {
  if (w.type !== 'keyspace.gap') return '—';
  if (w.found === null)
    return w.reconciledBySeq === null
      ? '<span class="badge warn">not stated</span>'
      : `start-up baseline <span class="mono">#${w.reconciledBySeq}</span>`;
  const part = (label: string, m: Record<string, number>): string[] => {
    const e = Object.entries(m).filter(([, n]) => n > 0);
    return e.length === 0 ? [] : [`${label}: ${e.map(([k, n]) => `${k} ${n}`).join(', ')}`];
  };
  const lines = [
    ...part('appeared', w.found.appeared),
    ...part('vanished', w.found.vanished),
    ...part('TTL changed', w.found.ttlChanged),
  ];
  const scanned = w.scanned === null ? '' : `<div class="seq">${num(w.scanned)} keys scanned</div>`;
  return `${lines.length === 0 ? 'no change' : lines.map(esc).join('<br>')}${scanned}`;
}

/** Every finding of the period by rule, and every finding still open at the end (CC7.3, CC7.4). */
function findingsSection(r: Soc2Report): string {
  const rules = Object.entries(r.findings).sort(([a], [b]) => a.localeCompare(b));
  const counts = table(
    rules,
    [
      { head: 'Rule', cell: ([k]) => `<span class="mono">${esc(k)}</span>` },
      { head: 'Opened', numeric: true, cell: ([, v]) => num(v.opened) },
      { head: 'Resolved', numeric: true, cell: ([, v]) => num(v.resolved) },
      { head: 'Open at end', numeric: true, cell: ([, v]) => num(v.openAtEnd) },
    ],
    'No finding in the period.',
  );
  const open = r.findingList.filter((f) => f.resolvedSeq === null);
  const ruleColumn: Column<FindingRow> = {
    head: 'Rule',
    cell: (f) => `<span class="mono">${esc(f.rule)}</span>`,
  };
  return section(
    9,
    'findings',
    'Findings of the period',
    ['CC7.3', 'CC7.4'],
    'Every rule with a finding active in the period, and every finding still open at its end, whichever section above it belongs to (rotation_incomplete included).',
    `${counts}<h3>Open at the end of the period</h3>${table(open, [ruleColumn, ...findingColumns], 'None.')}`,
  );
}

function accessSection(r: Soc2Report): string {
  const a = r.adminAccess;
  const who = Object.entries(a.principals).sort((x, y) => y[1] - x[1]);
  return section(
    8,
    'access',
    'Access to this evidence',
    [],
    'Every request to the admin API is an <span class="mono">admin.access</span> record of the ledger.',
    `<p>${num(a.allowed)} allowed and ${num(a.denied)} denied admin request(s) in the period.</p>${table(
      who,
      [
        { head: 'Principal', cell: ([k]) => esc(k) },
        { head: 'Requests', numeric: true, cell: ([, n]) => num(n) },
      ],
      '',
    )}`,
  );
}

function method(): string {
  return `<section id="method"><h2><span class="num">A</span>Method</h2><ol class="method">
<li>The report covers every ledger record whose seq lies between the first and the last record observed in the period (seq, not the clock, orders the ledger). The same records form the evidence bundle of the period.</li>
<li>Integrity: each record's canonical bytes are hashed (SHA-256 leaf, RFC 6962 domain separation) and chained from chain(first−1) up to the first Ed25519-signed checkpoint at or after the last record; the checkpoint signatures are verified with the ledger's public key.</li>
<li>Inventory is replayed from the last keyspace baseline before the period; tokens a baseline only counted are removed by count. Issued: a write of a token not live; refreshed: a write over a live token, or a TTL change; deleted: a DEL/UNLINK, whatever its cause. Without a baseline before the period the start is unknown, not zero.</li>
<li>Policy: each TTL is judged by the config.policy record in force when it was recorded (or by <span class="mono">--config</span> for the whole period), with the correlator's tolerance; tokens over policy and without expiry are counted once each.</li>
<li>Revocation latency runs from the provider's event time to the last matching token leaving Redis (revocation.propagation records); percentiles are nearest-rank; an unknown latency counts as a breach.</li>
<li>Tokens appear only as HMAC-SHA256 fingerprints; no secret is stored in the ledger or shown here.</li>
</ol></section>`;
}

function policyLabel(r: Soc2Report): string {
  const p = r.policy;
  if (p.source === 'none') return '<span class="badge warn">not recorded</span>';
  if (p.source === 'config') return 'given with --config (overrides the ledger)';
  return `recorded in the ledger (${p.inForce.map((x) => `#${x.seq ?? ''}`).join(', ')})`;
}

/** The printable, self-contained HTML page of a report: no script, no link, no external asset. */
export function renderReportHtml(r: Soc2Report): string {
  const range = r.ledger.range;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(REPORT_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tokenwatch ${esc(r.generator.version)}">
<title>SOC 2 evidence report · ${esc(time(r.period.from))} – ${esc(time(r.period.to))}</title>
<style>${REPORT_CSS}</style></head>
<body><main>
<header class="cover"><div class="eyebrow">SOC 2 evidence · OAuth token lifecycle</div>
<h1>Token access control report</h1>
<p class="subtitle">Produced by tokenwatch from its tamper-evident audit ledger.</p>
<dl class="meta">
<dt>Period</dt><dd>${esc(time(r.period.from))} – ${esc(time(r.period.to))}</dd>
<dt>Generated</dt><dd>${esc(time(r.generatedAt))}</dd>
<dt>Ledger</dt><dd class="mono">${esc(r.ledger.id)}</dd>
<dt>Records</dt><dd>${range ? `seq ${num(range.firstSeq)} – ${num(range.lastSeq)}` : 'none'}</dd>
<dt>Policy</dt><dd>${policyLabel(r)}</dd>
<dt>Verification</dt><dd>${esc(r.integrity.status)}${r.integrity.sealedBy ? ` · checkpoint #${r.integrity.sealedBy.n}` : ''}</dd>
<dt>Signing key</dt><dd class="mono">${esc(r.integrity.keyIds.join(', ') || '—')}</dd>
<dt>Times</dt><dd>UTC throughout</dd>
<dt>Record</dt><dd>#n is the ledger seq of the record</dd>
</dl></header>
${summaryCards(r)}
${integritySection(r)}
${inventorySection(r)}
${revocationSection(r)}
${ttlSection(r)}
${anomalySection(r)}
${responseSection(r)}
${blindSpotSection(r)}
${accessSection(r)}
${findingsSection(r)}
${cacheHealthSectionHtml(10, r.cacheHealth)}
${method()}
<footer>tokenwatch ${esc(r.generator.version)} · report format ${r.version} · generated ${esc(time(r.generatedAt))}. The JSON twin of this page (<span class="mono">--format json</span>) carries every number shown here.</footer>
</main></body></html>
`;
}
