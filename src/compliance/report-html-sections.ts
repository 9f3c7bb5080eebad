import {
  cellTime,
  duration,
  esc,
  num,
  percent,
  seconds,
  seqs,
  table,
  time,
} from './html-format.js';
import { card, section, signed } from './report-html-parts.js';
import type { Breach, CheckpointRef, Soc2Report } from './report-types.js';
import { churnChart, inventoryChart, latencyChart } from './svg-charts.js';

/** Sections 1-4 of the HTML report and its summary cards (rendering only; numbers come from report-data). */

export function summaryCards(r: Soc2Report): string {
  const i = r.integrity;
  const integrityTone = i.status === 'verified' ? 'good' : i.status === 'failed' ? 'bad' : 'warn';
  const inv = r.inventory;
  const rv = r.revocations;
  const p95 = rv.latencySeconds.p95;
  const late = rv.breaches.length;
  const open = Object.values(r.findings).reduce((a, f) => a + f.openAtEnd, 0);
  const blind = r.blindSpots;
  return `<div class="cards">${[
    card(
      'Evidence integrity',
      esc(i.verdict.toUpperCase()),
      i.verdict === 'verified'
        ? `${i.sealedBy ? `sealed by checkpoint #${i.sealedBy.n}, key ${esc(i.sealedBy.keyId)}` : 'sealed by a batch seal'}${i.anchored ? '' : '; unanchored'}`
        : esc(i.reason ?? ''),
      integrityTone,
    ),
    card(
      'Live tokens',
      `${liveNum(sumKnown(inv.start))} → ${liveNum(sumKnown(inv.end))}`,
      `${num(inv.totals.issued)} issued, ${num(inv.totals.expired + inv.totals.deleted + inv.totals.evicted + inv.totals.vanished)} ended${inv.startKnown ? '' : '; the start is unknown (no baseline before the period)'}`,
      inv.startKnown && inv.endKnown ? '' : 'warn',
    ),
    card(
      'Revocation p95',
      esc(seconds(p95)),
      `${num(rv.count)} revocations measured; SLA ${esc(seconds(rv.slaSeconds))}`,
      p95 === null ? '' : rv.slaSeconds !== null && p95 > rv.slaSeconds ? 'bad' : 'good',
    ),
    card(
      'SLA breaches',
      num(late),
      late === 0
        ? 'every measured revocation propagated in time'
        : 'listed with their evidence in section 3',
      late === 0 ? 'good' : 'bad',
    ),
    card(
      'Observed time',
      esc(percent(blind.coverage)),
      `${blind.windows.length} blind or degraded window(s), ${esc(duration(blind.totalMs))} in total`,
      blind.windows.length === 0 ? 'good' : 'warn',
    ),
    card(
      'Open findings at end',
      num(open),
      `${Object.values(r.findings).reduce((a, f) => a + f.opened, 0)} opened, ${Object.values(r.findings).reduce((a, f) => a + f.resolved, 0)} resolved in the period`,
      open === 0 ? 'good' : 'warn',
    ),
  ].join('')}</div>`;
}

/** Sum of per-kind counts; null when any is unknown. */
export function sumKnown(o: Record<string, number | null>): number | null {
  let t = 0;
  for (const v of Object.values(o)) {
    if (v === null) return null;
    t += v;
  }
  return t;
}

/** A count that may be unknown. */
export function liveNum(n: number | null | undefined): string {
  return n === null || n === undefined ? '<span class="badge warn">unknown</span>' : num(n);
}

export function integritySection(r: Soc2Report): string {
  const i = r.integrity;
  const badge = i.status === 'verified' ? 'good' : i.status === 'failed' ? 'bad' : 'warn';
  const range = r.ledger.range;
  const kv = `<div class="kv">
<div>Result</div><div><span class="badge ${badge}">${esc(i.verdict)}</span> ${i.status === 'verified' ? `${num(i.recordsChecked)} records re-hashed; the chain reaches a signature` : esc(i.reason ?? '')}</div>
<div>Anchors</div><div>${i.anchored ? 'anchored outside the database' : '<span class="badge warn">anchored: false</span> the key or checkpoint log used is not independent of the database'}<br>${i.anchors.map(esc).join('<br>')}</div>
<div>Records</div><div>${range ? `seq ${num(range.firstSeq)} – ${num(range.lastSeq)} (${num(range.records)} records${range.timeOutliers > 0 ? `, ${range.timeOutliers} with a time outside the period` : ''})` : 'none in the period'}</div>
${i.archivedEarlier ? `<div>Archived earlier</div><div>seq 1 – ${num(i.archivedEarlier.toSeq)}, in files named inside <span class="mono">${esc(i.archivedEarlier.namedIn)}</span>: not in this report's numbers; <span class="mono">tokenwatch verify --archive DIR</span> re-hashes them</div>` : ''}
${i.archived.length > 0 ? `<div>Archived</div><div>${i.archived.map((a) => `seq ${num(a.fromSeq)} – ${num(a.toSeq)} (${num(a.records)} records, ${esc(time(a.firstTime))} – ${esc(time(a.lastTime))}) in <span class="mono">${esc(a.file)}</span>`).join('<br>')}<br>not re-hashed here: <span class="mono">tokenwatch verify --archive DIR</span> re-hashes them</div>` : ''}
<div>Chain anchor</div><div>${i.anchor ? `chain(${i.anchor.seq}) from ${esc(i.anchor.source)}: <span class="mono">${esc(i.anchor.chain)}</span>` : '—'}</div>
<div>Sealed by</div><div>${i.sealedBy ? `checkpoint #${i.sealedBy.n} at seq ${num(i.sealedBy.seq)}, ${esc(time(i.sealedBy.time))}, key <span class="mono">${esc(i.sealedBy.keyId)}</span>` : '—'}</div>
<div>Signature</div><div>${i.sealedBy ? `<span class="mono">${esc(i.sealedBy.signature)}</span>` : '—'}</div>
</div>`;
  const problems =
    i.problems.length > 0
      ? `<h3>Problems</h3><ul>${i.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`
      : '';
  const cps = table<CheckpointRef>(
    i.checkpoints,
    [
      { head: 'No.', numeric: true, cell: (c) => `#${c.n}` },
      { head: 'Covers seq', numeric: true, cell: (c) => num(c.seq) },
      { head: 'Signed at', cell: (c) => cellTime(c.time) },
      { head: 'Reason', cell: (c) => esc(c.reason) },
      { head: 'Key', cell: (c) => `<span class="mono">${esc(c.keyId)}</span>` },
      {
        head: 'Signature (Ed25519)',
        cell: (c) => `<span class="mono">${esc(c.signature.slice(0, 24))}…</span>`,
      },
      {
        head: 'Valid',
        cell: (c) =>
          c.signatureValid === true
            ? '<span class="badge good">yes</span>'
            : c.signatureValid === false
              ? '<span class="badge bad">no</span>'
              : '<span class="badge warn">untrusted key</span>',
      },
    ],
    'No checkpoint covers the period.',
  );
  const listed =
    i.checkpointCount > i.checkpoints.length
      ? `<p class="lead">${num(i.checkpointCount)} checkpoints cover the period; the first and last ${i.checkpoints.length / 2} are listed.</p>`
      : '';
  return section(
    1,
    'integrity',
    'Integrity of this evidence',
    [],
    'Every record of the period is re-hashed and its hash chain recomputed up to an Ed25519-signed checkpoint; an evidence bundle of the same period (<span class="mono">tokenwatch export</span>) can be checked independently with <span class="mono">tokenwatch verify-export</span>.',
    `${kv}${problems}<h3>Checkpoints covering the period</h3>${listed}${cps}`,
  );
}

export function inventorySection(r: Soc2Report): string {
  const inv = r.inventory;
  const rows = [
    ...inv.kinds.map((k) => ({ k, l: inv.lifecycle[k] })),
    { k: 'All kinds', l: inv.totals },
  ];
  const t = table(
    rows,
    [
      {
        head: 'Kind',
        cell: (x) => (x.k === 'All kinds' ? `<strong>${esc(x.k)}</strong>` : esc(x.k)),
      },
      {
        head: 'Live at start',
        numeric: true,
        cell: (x) => liveNum(x.k === 'All kinds' ? sumKnown(inv.start) : inv.start[x.k]),
      },
      { head: 'Found by SCAN', numeric: true, cell: (x) => num(x.l?.present) },
      { head: 'Issued', numeric: true, cell: (x) => num(x.l?.issued) },
      { head: 'Refreshed', numeric: true, cell: (x) => num(x.l?.refreshed) },
      { head: 'Deleted', numeric: true, cell: (x) => num(x.l?.deleted) },
      { head: 'Expired', numeric: true, cell: (x) => num(x.l?.expired) },
      { head: 'Evicted', numeric: true, cell: (x) => num(x.l?.evicted) },
      { head: 'Vanished', numeric: true, cell: (x) => num(x.l?.vanished) },
      {
        head: 'Baseline ±',
        numeric: true,
        cell: (x) => {
          const v =
            x.k === 'All kinds' ? sumKnown(inv.adjustments) : (inv.adjustments[x.k] ?? null);
          return v === null ? '—' : signed(v);
        },
      },
      {
        head: 'Live at end',
        numeric: true,
        cell: (x) => liveNum(x.k === 'All kinds' ? sumKnown(inv.end) : inv.end[x.k]),
      },
    ],
    'No token records in the period.',
  );
  const providers = Object.entries(r.providerEvents).sort((a, b) => b[1] - a[1]);
  const pt = table(
    providers,
    [
      { head: 'Provider event', cell: ([k]) => `<span class="mono">${esc(k)}</span>` },
      { head: 'Count', numeric: true, cell: ([, v]) => num(v) },
    ],
    'No identity-provider events in the period.',
  );
  const startTotal = sumKnown(inv.start);
  const unknown = inv.startKnown
    ? ''
    : `<p class="lead"><span class="badge warn">unknown</span> Live tokens at the start are unknown: no keyspace baseline (SCAN) precedes the period for every node, so tokens cached before tokenwatch first looked were not seen. They are not zero. ${inv.baselines.length > 0 ? `The first baseline in the period (#${inv.baselines[0]?.seq ?? ''}) states what was live from then on.` : ''}</p>`;
  const baselines =
    inv.baselines.length === 0
      ? ''
      : `<h3>Baselines in the period</h3>${table(
          inv.baselines,
          [
            { head: 'Record', numeric: true, cell: (b) => `#${b.seq}` },
            { head: 'Time', cell: (b) => cellTime(b.time) },
            { head: 'Node', cell: (b) => `<span class="t">${esc(b.node ?? '—')}</span>` },
            {
              head: 'Live tokens found',
              cell: (b) =>
                esc(
                  Object.entries(b.counts)
                    .map(([k, n]) => `${k}: ${n}`)
                    .join(', ') || 'none',
                ),
            },
          ],
          '',
        )}`;
  return section(
    2,
    'inventory',
    'Token inventory and churn',
    ['CC6.1'],
    'Tokens cached in Redis per kind at the start and end of the period, and what happened to them in between (Redis keyspace notifications, repaired by reconciliation after blind spots). Deleted counts every DEL/UNLINK (logouts, rotations, revocations, operators): it is not a count of revocations, which are measured in section 3. Found by SCAN: live tokens a start-up or post-gap SCAN found (not issuances). Baseline ± is what a keyspace baseline or reconciliation corrected: live at end = live at start + issued − deleted − expired − evicted − vanished ± baseline.',
    `${unknown}${t}${baselines}${churnChart(inv.churn.buckets, inv.churn.bucketMs)}${inventoryChart(inv.churn.buckets, inv.churn.bucketMs, startTotal)}<h3>Identity-provider events</h3>${pt}`,
  );
}

export function revocationSection(r: Soc2Report): string {
  const rv = r.revocations;
  const s = rv.latencySeconds;
  const stats = table(
    [rv],
    [
      {
        head: 'Received',
        numeric: true,
        cell: (x) => (x.received === null ? 'unknown' : num(x.received)),
      },
      { head: 'Measured', numeric: true, cell: (x) => num(x.count) },
      { head: 'Tokens matched', numeric: true, cell: (x) => num(x.tokens) },
      { head: 'Within SLA', numeric: true, cell: (x) => num(x.met) },
      { head: 'Late', numeric: true, cell: (x) => num(x.breached) },
      { head: 'Unknown', numeric: true, cell: (x) => num(x.unknown) },
      { head: 'p50', numeric: true, cell: () => esc(seconds(s.p50)) },
      { head: 'p95', numeric: true, cell: () => esc(seconds(s.p95)) },
      { head: 'p99', numeric: true, cell: () => esc(seconds(s.p99)) },
      { head: 'Max', numeric: true, cell: () => esc(seconds(s.max)) },
      { head: 'SLA', numeric: true, cell: (x) => esc(seconds(x.slaSeconds)) },
    ],
    '',
  );
  const breaches = table<Breach>(
    rv.breaches,
    [
      {
        head: 'Provider event',
        cell: (b) => `${esc(b.provider ?? '')} <span class="mono">${esc(b.providerEventId)}</span>`,
      },
      { head: 'Type', cell: (b) => esc(b.eventType ?? '—') },
      {
        head: 'Status',
        cell: (b) =>
          `<span class="badge ${b.status === 'open' ? 'warn' : 'bad'}">${esc(b.status)}</span>`,
      },
      { head: 'Latency', numeric: true, cell: (b) => esc(seconds(b.latencySeconds)) },
      { head: 'SLA', numeric: true, cell: (b) => esc(seconds(b.slaSeconds)) },
      {
        head: 'Finding',
        cell: (b) => (b.findingId ? `<span class="mono">${esc(b.findingId)}</span>` : '—'),
      },
      { head: 'Evidence seqs', cell: (b) => seqs(b.evidenceSeqs, 12) },
    ],
    'No breach: every measured revocation propagated within the SLA.',
  );
  return section(
    3,
    'revocation',
    'Revocation propagation',
    ['CC6.2'],
    'Time from an identity provider revoking access to the last matching token leaving Redis, against the SLA (nearest-rank percentiles).',
    `${stats}${latencyChart(rv.histogram, rv.slaSeconds)}<h3>Breaches</h3>${breaches}`,
  );
}
