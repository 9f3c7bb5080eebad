import type { CoverageProblem } from '../audit/coverage.js';
import { cellTime, esc, num, percent, table, time } from './html-format.js';
import type { MergedSoc2Report, OwnershipEvent } from './merged-report.js';
import { section } from './report-html-parts.js';
import { REPORT_CSP } from './report-html.js';
import { REPORT_CSS } from './report-style.js';

/**
 * The printable page of a merged report (several instances' ledgers, docs/ha-evidence.md): the
 * coverage verdict, the ownership timeline, the deduplicated token counts and each ledger's own
 * verdict. Self-contained like the single-ledger page (no script, no external asset).
 */
export function renderMergedReportHtml(r: MergedSoc2Report): string {
  const c = r.coverage;
  const failed = r.ledgers.filter((l) => l.report.integrity.status === 'failed');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(REPORT_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tokenwatch ${esc(r.generator.version)}">
<title>SOC 2 evidence report (${r.ledgers.length} instances) · ${esc(time(r.period.from))} – ${esc(time(r.period.to))}</title>
<style>${REPORT_CSS}</style></head>
<body><main>
<header class="cover"><div class="eyebrow">SOC 2 evidence · OAuth token lifecycle · several instances</div>
<h1>Token access control report</h1>
<p class="subtitle">Produced by tokenwatch from the tamper-evident audit ledgers of ${r.ledgers.length} instance(s).</p>
<dl class="meta">
<dt>Period</dt><dd>${esc(time(r.period.from))} – ${esc(time(r.period.to))}</dd>
<dt>Generated</dt><dd>${esc(time(r.generatedAt))}</dd>
<dt>Ledgers</dt><dd>${r.ledgers.length}${failed.length > 0 ? ` · <span class="badge bad">${failed.length} not verified</span>` : ''}</dd>
<dt>Coverage</dt><dd>${c.ok ? '<span class="badge good">complete</span>' : `<span class="badge bad">incomplete: ${c.problems.length} problem(s)</span>`}</dd>
<dt>Times</dt><dd>UTC throughout</dd>
</dl></header>
${coverageSection(r)}
${ownershipSection(r)}
${tokenSection(r)}
${ledgerSection(r)}
<footer>tokenwatch ${esc(r.generator.version)} · merged report format ${r.version} · generated ${esc(time(r.generatedAt))}. The JSON twin (<span class="mono">--format json</span>) carries every number shown here and each ledger's own report.</footer>
</main></body></html>
`;
}

function coverageSection(r: MergedSoc2Report): string {
  const c = r.coverage;
  const nodes = table(
    c.nodes,
    [
      { head: 'Node', cell: (n) => `<span class="mono">${esc(n.node)}</span>` },
      { head: 'From', cell: (n) => cellTime(n.window.from) },
      { head: 'To', cell: (n) => cellTime(n.window.to) },
      { head: 'Epochs', numeric: true, cell: (n) => num(n.epochs.length) },
      { head: 'Gap records', numeric: true, cell: (n) => num(n.gaps.length) },
      { head: 'Covered', numeric: true, cell: (n) => percent(n.covered) },
    ],
    'No ownership record in the period: no coordinated instance owned a node.',
  );
  const problems = table<CoverageProblem>(
    c.problems,
    [
      { head: 'Problem', cell: (p) => `<span class="badge bad">${esc(p.class)}</span>` },
      { head: 'Node', cell: (p) => `<span class="mono">${esc(p.node)}</span>` },
      {
        head: 'Epoch',
        numeric: true,
        cell: (p) => esc(p.epoch === null ? '—' : `${p.epoch}${p.toEpoch ? `–${p.toEpoch}` : ''}`),
      },
      { head: 'From', cell: (p) => cellTime(p.span.from) },
      { head: 'To', cell: (p) => cellTime(p.span.to) },
      { head: 'Detail', cell: (p) => esc(p.detail) },
    ],
    'None: every node was owned by a given ledger, or stated blind by a keyspace.gap record, throughout.',
  );
  return section(
    1,
    'coverage',
    'Coverage across instances',
    ['CC7.2'],
    'For every watched node and every moment from its first owner on, some ledger owned it or a gap record states the blind window. Only ledgers that verify are read; a missing fencing epoch means a ledger was not given.',
    `${nodes}<h3>Problems</h3>${problems}${c.warnings.map((w) => `<p class="none">${esc(w)}</p>`).join('')}`,
  );
}

function ownershipSection(r: MergedSoc2Report): string {
  return section(
    2,
    'ownership',
    'Ownership timeline',
    ['CC7.2'],
    'Acquisitions (first owner, graceful handover, takeover after a lost lease), releases and fencings of each node, from the signed records of each instance.',
    table<OwnershipEvent>(
      r.ownership,
      [
        { head: 'Time', cell: (e) => cellTime(e.time) },
        { head: 'Node', cell: (e) => `<span class="mono">${esc(e.node)}</span>` },
        {
          head: 'Event',
          cell: (e) =>
            e.event === 'acquired'
              ? `acquired <span class="badge ${e.change === 'takeover' ? 'warn' : 'info'}">${esc(e.change)}</span>`
              : e.event === 'fenced'
                ? '<span class="badge warn">fenced</span>'
                : 'released',
        },
        { head: 'Epoch', numeric: true, cell: (e) => num(e.epoch) },
        { head: 'Instance', cell: (e) => esc(e.instance ?? '—') },
        {
          head: 'Detail',
          cell: (e) =>
            esc(
              e.event === 'acquired'
                ? e.previous
                  ? `after epoch ${e.previous.epoch} (${e.previous.instance ?? '?'}); replayed ${e.replayed ?? '?'} from ${e.from ?? '(nothing committed)'}`
                  : 'first owner'
                : `${e.reason ?? ''}${e.through ? `, through ${e.through}` : ''}`,
            ),
        },
        { head: 'Ledger', cell: (e) => `<span class="mono">${esc(e.path)}</span>` },
      ],
      'No ownership change in the period.',
    ),
  );
}

function tokenSection(r: MergedSoc2Report): string {
  const t = r.tokens;
  const rows = Object.entries(t.byType).flatMap(([type, kinds]) =>
    Object.entries(kinds).map(([kind, n]) => ({ type, kind, n })),
  );
  return section(
    3,
    'tokens',
    'Token events, each counted once',
    ['CC6.1', 'CC6.2'],
    `Token records of every ledger, deduplicated by node and stream position: ${num(t.counted)} counted, ${num(t.duplicates)} recorded by more than one instance (counted once), ${num(t.fencedExcluded)} written by a fenced owner after its successor's replay point (the successor's copies counted), ${num(t.withoutPosition)} without a position (counted as recorded).`,
    table(
      rows,
      [
        { head: 'Event', cell: (x) => `<span class="mono">${esc(x.type)}</span>` },
        { head: 'Kind', cell: (x) => esc(x.kind) },
        { head: 'Records', numeric: true, cell: (x) => num(x.n) },
      ],
      'No token record in the period.',
    ),
  );
}

function ledgerSection(r: MergedSoc2Report): string {
  return section(
    4,
    'ledgers',
    'Ledgers',
    ['CC7.2'],
    `Each instance's ledger, verified on its own. Not merged across ledgers: ${r.notMerged.map(esc).join('; ')}. Each ledger's own report (<span class="mono">tokenwatch report --db</span> that ledger, or this report's JSON) has them.`,
    table(
      r.ledgers,
      [
        { head: 'Ledger', cell: (l) => `<span class="mono">${esc(l.path)}<br>${esc(l.id)}</span>` },
        {
          head: 'Verification',
          cell: (l) =>
            `<span class="badge ${l.report.integrity.status === 'failed' ? 'bad' : l.report.integrity.status === 'verified' ? 'good' : 'warn'}">${esc(l.report.integrity.status)}</span>${l.report.integrity.reason ? `<div class="seq">${esc(l.report.integrity.reason)}</div>` : ''}`,
        },
        {
          head: 'Records',
          numeric: true,
          cell: (l) => num(l.report.ledger.range?.records ?? 0),
        },
        {
          head: 'Blind',
          numeric: true,
          cell: (l) => percent(1 - l.report.blindSpots.coverage),
        },
      ],
      'No ledger.',
    ),
  );
}
