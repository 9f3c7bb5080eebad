import { axisTime, duration, esc, num, seconds, time } from './html-format.js';
import type { BlindSpot, ChurnBucket } from './report-types.js';

/**
 * Inline SVG charts of the HTML report: no script, no external asset, readable in print and in
 * an email client. Each chart is a `<figure>` with an accessible title and a caption stating
 * what it shows; every number drawn is in a table of the same section too.
 */

export const COLORS = {
  ink: '#1f2937',
  muted: '#6b7280',
  grid: '#e5e7eb',
  primary: '#1d4e89',
  secondary: '#7aa6d6',
  warn: '#d97706',
  bad: '#b91c1c',
  good: '#15803d',
  gap: '#b91c1c',
  degraded: '#d97706',
};

const W = 720;
const PAD = { left: 52, right: 12, top: 14, bottom: 30 };

/** A "nice" axis maximum (1, 2, 2.5, 5 × 10^k) at or above `max`. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function figure(id: string, title: string, svg: string, caption: string, height: number): string {
  return `<figure class="chart" id="${id}"><svg viewBox="0 0 ${W} ${height}" role="img" aria-labelledby="${id}-t"><title id="${id}-t">${esc(title)}</title>${svg}</svg><figcaption>${caption}</figcaption></figure>`;
}

function yAxis(
  top: number,
  bottom: number,
  max: number,
  label: (v: number) => string,
  steps = 4,
): string {
  let out = '';
  for (let i = 0; i <= steps; i++) {
    const v = (max * i) / steps;
    const y = bottom - ((bottom - top) * i) / steps;
    out += `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${COLORS.grid}" stroke-width="1"/>`;
    out += `<text x="${PAD.left - 6}" y="${(y + 3.5).toFixed(1)}" text-anchor="end" class="tick">${esc(label(v))}</text>`;
  }
  return out;
}

function legend(items: readonly [string, string][], y: number): string {
  let x = PAD.left;
  let out = '';
  for (const [color, text] of items) {
    out += `<rect x="${x}" y="${y - 8}" width="10" height="10" rx="2" fill="${color}"/><text x="${x + 14}" y="${y + 1}" class="tick">${esc(text)}</text>`;
    x += 22 + text.length * 6.2;
  }
  return out;
}

/** Mirror columns: writes (issued + refreshed) above the axis, ends below, per time bucket. */
export function churnChart(buckets: readonly ChurnBucket[], bucketMs: number): string {
  const H = 250;
  const mid = PAD.top + (H - PAD.top - PAD.bottom - 16) / 2;
  const half = mid - PAD.top;
  const max = niceMax(
    Math.max(1, ...buckets.map((b) => Math.max(b.issued + b.refreshed, b.ended))),
  );
  const plotW = W - PAD.left - PAD.right;
  const bw = plotW / Math.max(1, buckets.length);
  let bars = '';
  buckets.forEach((b, i) => {
    const x = PAD.left + i * bw + bw * 0.12;
    const w = Math.max(1, bw * 0.76);
    const hi = (b.issued / max) * half;
    const hr = (b.refreshed / max) * half;
    const he = (b.ended / max) * half;
    const tip = `${time(b.start)}: ${b.issued} issued, ${b.refreshed} refreshed, ${b.ended} ended`;
    bars += `<g><title>${esc(tip)}</title>`;
    if (hi > 0)
      bars += `<rect x="${x.toFixed(1)}" y="${(mid - hi).toFixed(1)}" width="${w.toFixed(1)}" height="${hi.toFixed(1)}" fill="${COLORS.primary}"/>`;
    if (hr > 0)
      bars += `<rect x="${x.toFixed(1)}" y="${(mid - hi - hr).toFixed(1)}" width="${w.toFixed(1)}" height="${hr.toFixed(1)}" fill="${COLORS.secondary}"/>`;
    if (he > 0)
      bars += `<rect x="${x.toFixed(1)}" y="${mid.toFixed(1)}" width="${w.toFixed(1)}" height="${he.toFixed(1)}" fill="${COLORS.warn}"/>`;
    bars += '</g>';
  });
  let axis = '';
  for (const f of [-1, -0.5, 0, 0.5, 1]) {
    const y = mid - f * half;
    axis += `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${f === 0 ? COLORS.muted : COLORS.grid}" stroke-width="1"/>`;
    axis += `<text x="${PAD.left - 6}" y="${(y + 3.5).toFixed(1)}" text-anchor="end" class="tick">${esc(num(Math.abs(f) * max))}</text>`;
  }
  const xAxis = timeTicks(
    buckets.map((b) => b.start),
    bucketMs,
    mid + half + 14,
    bw,
  );
  const svg = `${axis}${bars}${xAxis}${legend(
    [
      [COLORS.primary, 'issued'],
      [COLORS.secondary, 'refreshed'],
      [COLORS.warn, 'ended (expired, deleted, evicted, vanished)'],
    ],
    H - 6,
  )}`;
  return figure(
    'chart-churn',
    'Token churn over time',
    svg,
    `Token churn per ${esc(duration(bucketMs))}: writes above the axis, ends below.`,
    H,
  );
}

function timeTicks(starts: readonly number[], bucketMs: number, y: number, bw: number): string {
  const every = Math.max(1, Math.ceil(starts.length / 8));
  let out = '';
  starts.forEach((t, i) => {
    if (i % every !== 0) return;
    const x = PAD.left + i * bw;
    out += `<text x="${x.toFixed(1)}" y="${y}" class="tick">${esc(axisTime(t, bucketMs))}</text>`;
  });
  return out;
}

/**
 * Live tokens (all kinds) at the end of each bucket, as a filled line. Stretches where the
 * inventory is unknown (before the first baseline) are left blank rather than drawn as zero.
 */
export function inventoryChart(
  buckets: readonly ChurnBucket[],
  bucketMs: number,
  start: number | null,
): string {
  const H = 190;
  const top = PAD.top;
  const bottom = H - PAD.bottom;
  const known = buckets.flatMap((b) => (b.live === null ? [] : [b.live]));
  const max = niceMax(Math.max(1, start ?? 0, ...known));
  const plotW = W - PAD.left - PAD.right;
  const step = plotW / Math.max(1, buckets.length);
  const y = (v: number): number => bottom - (v / max) * (bottom - top);
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  const point = (x: number, v: number | null): void => {
    if (v === null) {
      if (run.length > 0) runs.push(run);
      run = [];
    } else run.push([x, y(v)]);
  };
  point(PAD.left, start);
  buckets.forEach((b, i) => point(PAD.left + (i + 1) * step, b.live));
  if (run.length > 0) runs.push(run);
  let shapes = '';
  for (const r of runs) {
    const pts = r.map(([x, v]) => `${x.toFixed(1)},${v.toFixed(1)}`).join(' ');
    const first = (r[0] as [number, number])[0];
    const last = (r[r.length - 1] as [number, number])[0];
    shapes += `<polygon points="${first.toFixed(1)},${bottom} ${pts} ${last.toFixed(1)},${bottom}" fill="${COLORS.secondary}" fill-opacity="0.35"/><polyline points="${pts}" fill="none" stroke="${COLORS.primary}" stroke-width="2"/>`;
  }
  const svg = `${yAxis(top, bottom, max, (v) => num(v))}${shapes}${timeTicks(
    buckets.map((b) => b.start),
    bucketMs,
    bottom + 16,
    step,
  )}`;
  return figure(
    'chart-inventory',
    'Live tokens over time',
    svg,
    'Live tokens, all kinds, at the end of each interval (replayed from the ledger; blank while unknown, before the first baseline).',
    H,
  );
}

/** Latency histogram with the SLA drawn as a dashed line; bins past the SLA in red. */
export function latencyChart(
  histogram: readonly { upToSeconds: number | null; count: number }[],
  sla: number | null,
): string {
  const H = 200;
  const top = PAD.top;
  const bottom = H - PAD.bottom - 12;
  const max = niceMax(Math.max(1, ...histogram.map((h) => h.count)));
  const plotW = W - PAD.left - PAD.right;
  const bw = plotW / Math.max(1, histogram.length);
  let bars = '';
  let slaX: number | null = null;
  histogram.forEach((h, i) => {
    const lower = i === 0 ? 0 : (histogram[i - 1]?.upToSeconds ?? 0);
    const late = sla !== null && (h.upToSeconds === null || h.upToSeconds > sla);
    if (sla !== null && h.upToSeconds === sla) slaX = PAD.left + (i + 1) * bw;
    const hgt = (h.count / max) * (bottom - top);
    const x = PAD.left + i * bw + bw * 0.1;
    const label = h.upToSeconds === null ? `> ${seconds(lower)}` : `≤ ${seconds(h.upToSeconds)}`;
    bars += `<g><title>${esc(`${label}: ${h.count}`)}</title><rect x="${x.toFixed(1)}" y="${(bottom - hgt).toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${hgt.toFixed(1)}" rx="2" fill="${late ? COLORS.bad : COLORS.good}"/></g>`;
    if (h.count > 0)
      bars += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${(bottom - hgt - 4).toFixed(1)}" text-anchor="middle" class="tick">${h.count}</text>`;
    bars += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${bottom + 14}" text-anchor="middle" class="tick">${esc(label)}</text>`;
  });
  const line =
    slaX === null
      ? ''
      : `<line x1="${(slaX as number).toFixed(1)}" x2="${(slaX as number).toFixed(1)}" y1="${top - 4}" y2="${bottom}" stroke="${COLORS.bad}" stroke-dasharray="4 3" stroke-width="1.5"/><text x="${((slaX as number) + 4).toFixed(1)}" y="${top + 6}" class="tick sla">SLA ${esc(seconds(sla))}</text>`;
  const svg = `${yAxis(top, bottom, max, (v) => num(v))}${bars}${line}${legend(
    [
      [COLORS.good, 'within SLA'],
      [COLORS.bad, 'late'],
    ],
    H - 4,
  )}`;
  return figure(
    'chart-latency',
    'Revocation propagation latency',
    svg,
    'Revocations by propagation latency: provider event to the last revoked token leaving Redis.',
    H,
  );
}

/** The period as a bar, with every blind spot and degraded window drawn where it falls. */
export function blindSpotChart(windows: readonly BlindSpot[], from: number, to: number): string {
  const H = 92;
  const y0 = 22;
  const barH = 26;
  const plotW = W - PAD.left - PAD.right;
  const x = (t: number): number =>
    PAD.left + ((Math.min(to, Math.max(from, t)) - from) / (to - from)) * plotW;
  let marks = '';
  for (const w of windows) {
    const x1 = x(w.start);
    const width = Math.max(2, x(w.end) - x1);
    const color = w.type === 'keyspace.gap' ? COLORS.gap : COLORS.degraded;
    marks += `<g><title>${esc(`${w.type} ${time(w.start)} – ${time(w.end)} (${duration(w.durationMs)})`)}</title><rect x="${x1.toFixed(1)}" y="${y0}" width="${width.toFixed(1)}" height="${barH}" fill="${color}"/></g>`;
  }
  const svg = `<rect x="${PAD.left}" y="${y0}" width="${plotW}" height="${barH}" rx="3" fill="#e8f0e9" stroke="${COLORS.grid}"/>${marks}<text x="${PAD.left}" y="${y0 + barH + 16}" class="tick">${esc(time(from))}</text><text x="${W - PAD.right}" y="${y0 + barH + 16}" text-anchor="end" class="tick">${esc(time(to))}</text>${legend(
    [
      ['#e8f0e9', 'observed'],
      [COLORS.gap, 'keyspace blind spot'],
      [COLORS.degraded, 'audit ledger degraded'],
    ],
    12,
  )}`;
  return figure(
    'chart-blindspots',
    'Blind spots in the period',
    svg,
    'The period, with every window in which tokenwatch could not observe Redis or could not write the ledger.',
    H,
  );
}
