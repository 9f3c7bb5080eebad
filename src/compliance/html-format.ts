/**
 * Text helpers of the HTML report: escaping (every ledger value is untrusted text), number, time
 * and duration formats, and a table builder. No markup here is ever taken from the ledger.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** `2026-01-01 00:00:00 UTC`-style time. */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return `${new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '')} UTC`;
}

/** A time for table cells: `2026-01-01 10:12:00` (the page states that times are UTC), kept on one line per part. */
export function cellTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const iso = new Date(ms).toISOString();
  return `<span class="t">${iso.slice(0, 10)}</span> <span class="t">${iso.slice(11, 19)}</span>`;
}

/** A short time of day for chart axes (`HH:MM`, or the date for day-wide buckets). */
export function axisTime(ms: number, bucketMs: number): string {
  const iso = new Date(ms).toISOString();
  return bucketMs >= 86_400_000 ? iso.slice(5, 10) : iso.slice(11, 16);
}

/** Thousands separators, fixed decimals for fractions. */
export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Seconds with up to two decimals (`0.25 s`, `40 s`). */
export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  return `${Number(s.toFixed(2)).toLocaleString('en-US')} s`;
}

/** `15 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  // A sub-second blind spot is not "0 s": short spans keep their precision.
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000 && ms % 1000 !== 0) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** Percentage with one decimal (`99.9 %`). */
export function percent(fraction: number): string {
  return `${(Math.floor(fraction * 1000) / 10).toFixed(1)} %`;
}

/** `k1:1a2b3c4d…9f0e` for `hmac-sha256:k1:<hex>` (the full value stays in the title attribute). */
export function fingerprint(fp: string | null | undefined): string {
  if (!fp) return '—';
  const m = /^hmac-sha256:([^:]+):([0-9a-f]{16,})$/.exec(fp);
  const short = m ? `${m[1] ?? ''}:${(m[2] ?? '').slice(0, 8)}…${(m[2] ?? '').slice(-4)}` : fp;
  return `<span class="mono t" title="${esc(fp)}">${esc(short)}</span>`;
}

/** An identifier shortened in the middle when long (the full value stays in the title). */
export function shortId(id: string, max = 34): string {
  const short = id.length > max ? `${id.slice(0, max - 14)}…${id.slice(-12)}` : id;
  return `<span class="mono" title="${esc(id)}">${esc(short)}</span>`;
}

/** A list of seqs, collapsed when long (`12, 14, 30 … +8 more`). */
export function seqs(list: readonly number[], max = 8): string {
  if (list.length === 0) return '—';
  const shown = list
    .slice(0, max)
    .map((s) => `#${s}`)
    .join(', ');
  return `<span class="mono">${esc(shown)}${list.length > max ? ` … +${list.length - max} more` : ''}</span>`;
}

/** One table column: header, cell renderer (returns HTML), numeric alignment. */
export interface Column<T> {
  head: string;
  cell: (row: T) => string;
  numeric?: boolean;
}

/** A table, or a muted line saying there is nothing to list. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], empty: string): string {
  if (rows.length === 0) return `<p class="none">${esc(empty)}</p>`;
  const cls = (c: Column<T>): string => (c.numeric ? ' class="n"' : '');
  return `<table><thead><tr>${columns.map((c) => `<th${cls(c)}>${esc(c.head)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${columns.map((c) => `<td${cls(c)}>${c.cell(r)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}
