/**
 * The report's only stylesheet, inline (the page's CSP allows `style-src 'unsafe-inline'` and
 * nothing else): system fonts, A4 print layout, tables that repeat their header across pages.
 */
export const REPORT_CSS = `
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --soft:#f6f8fb; --brand:#1d4e89; --good:#15803d; --warn:#b45309; --bad:#b91c1c; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #eef1f5; color: var(--ink); font: 13px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1000px; margin: 24px auto; background: #fff; padding: 40px 48px 32px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
header.cover { border-bottom: 3px solid var(--brand); padding-bottom: 18px; margin-bottom: 22px; }
.eyebrow { text-transform: uppercase; letter-spacing: .12em; font-size: 11px; color: var(--brand); font-weight: 600; }
h1 { font-size: 26px; margin: 4px 0 2px; letter-spacing: -.01em; }
.subtitle { color: var(--muted); margin: 0 0 14px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 14px; margin: 0; font-size: 12px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-weight: 500; }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin: 0 0 26px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft); break-inside: avoid; }
.card .label { font-size: 11px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .note { font-size: 11.5px; color: var(--muted); }
.card.good { border-left: 4px solid var(--good); } .card.warn { border-left: 4px solid var(--warn); } .card.bad { border-left: 4px solid var(--bad); }
section { margin: 0 0 26px; }
h2 { font-size: 17px; margin: 0 0 4px; padding-top: 6px; border-top: 1px solid var(--line); display: flex; align-items: baseline; gap: 10px; }
h2 .num { color: var(--brand); font-variant-numeric: tabular-nums; }
h3 { font-size: 13.5px; margin: 16px 0 6px; }
.crit { display: inline-block; font-size: 10.5px; font-weight: 600; color: var(--brand); border: 1px solid #c6d5ea; background: #eef4fb; border-radius: 10px; padding: 0 7px; margin-left: 4px; vertical-align: 1px; }
p.lead { color: var(--muted); margin: 2px 0 10px; }
table { width: 100%; border-collapse: collapse; font-size: 12px; margin: 6px 0 10px; }
thead { display: table-header-group; }
th { text-align: left; font-weight: 600; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); border-bottom: 1.5px solid #cbd2dc; padding: 5px 8px; }
td { border-bottom: 1px solid var(--line); padding: 5px 8px; vertical-align: top; }
tr { break-inside: avoid; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.n { white-space: normal; }
.mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 11px; }
.t { white-space: nowrap; }
.seq { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 10.5px; color: var(--muted); margin-top: 1px; }
.none { color: var(--muted); font-style: italic; margin: 4px 0 10px; }
.badge { display: inline-block; white-space: nowrap; border-radius: 4px; padding: 1px 7px; font-size: 11px; font-weight: 650; text-transform: uppercase; letter-spacing: .04em; }
.badge.good { background: #dcfce7; color: #14532d; } .badge.warn { background: #fef3c7; color: #78350f; } .badge.bad { background: #fee2e2; color: #7f1d1d; } .badge.info { background: #e0e7ff; color: #1e3a8a; }
figure.chart { margin: 8px 0 14px; break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; display: block; }
figure.chart figcaption { font-size: 11.5px; color: var(--muted); margin-top: 2px; }
svg text.tick { font-size: 10.5px; fill: #4b5563; font-family: inherit; }
svg text.sla { fill: var(--bad); font-weight: 600; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; font-size: 12px; margin: 6px 0 10px; }
.kv div:nth-child(odd) { color: var(--muted); }
footer { margin-top: 28px; padding-top: 10px; border-top: 1px solid var(--line); font-size: 11px; color: var(--muted); }
ol.method { padding-left: 18px; font-size: 12px; color: #374151; } ol.method li { margin-bottom: 4px; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { background: #fff; font-size: 11.5px; }
  main { box-shadow: none; margin: 0; padding: 0; max-width: none; }
  section { break-inside: auto; }
  h2, h3 { break-after: avoid; }
  .cards { grid-template-columns: repeat(3, 1fr); }
}
`;
