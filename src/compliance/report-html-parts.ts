import {
  cellTime,
  duration,
  esc,
  fingerprint,
  num,
  seqs,
  shortId,
  type Column,
} from './html-format.js';
import type { FindingRow } from './report-types.js';

/** Building blocks shared by the report's sections: badges, cards, section frames, finding tables. */

export const crit = (...c: string[]): string =>
  c.map((x) => `<span class="crit">${esc(x)}</span>`).join('');

export /** Columns of every findings table: when, how long, which token, what, and the evidence. */
const findingColumns: Column<FindingRow>[] = [
  { head: 'Severity', cell: (f) => severityBadge(f.severity) },
  { head: 'Opened', cell: (f) => `${cellTime(f.openedAt)}<div class="seq">#${f.openedSeq}</div>` },
  {
    head: 'Resolved',
    cell: (f) =>
      f.resolvedAt === null
        ? '<span class="badge warn">open</span>'
        : `${cellTime(f.resolvedAt)}<div class="seq">#${f.resolvedSeq ?? ''}</div>`,
  },
  { head: 'Took', numeric: true, cell: (f) => esc(duration(f.durationMs)) },
  {
    head: 'Token',
    cell: (f) =>
      (f.kind ? `${esc(f.kind)}<br>` : '') + (f.fingerprint ? fingerprint(f.fingerprint) : ''),
  },
  { head: 'Summary', cell: (f) => `${esc(f.summary)}<div class="seq">${shortId(f.id)}</div>` },
  { head: 'Evidence', cell: (f) => seqs(f.evidenceSeqs, 6) },
];

export function signed(n: number): string {
  return n === 0 ? '0' : `${n > 0 ? '+' : '−'}${num(Math.abs(n))}`;
}

export function severityBadge(s: string): string {
  const cls = s === 'critical' || s === 'high' ? 'bad' : s === 'medium' ? 'warn' : 'info';
  return `<span class="badge ${cls}">${esc(s)}</span>`;
}

export function card(
  label: string,
  value: string,
  note: string,
  tone: 'good' | 'warn' | 'bad' | '' = '',
): string {
  return `<div class="card ${tone}"><div class="label">${esc(label)}</div><div class="value">${value}</div><div class="note">${note}</div></div>`;
}

export function section(
  n: number,
  id: string,
  title: string,
  criteria: string[],
  lead: string,
  body: string,
): string {
  return `<section id="${id}"><h2><span class="num">${n}</span>${esc(title)}${crit(...criteria)}</h2><p class="lead">${lead}</p>${body}</section>`;
}
