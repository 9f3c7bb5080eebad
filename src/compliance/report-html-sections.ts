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
import { card, findingColumns, section, signed } from './report-html-parts.js';
import type { Breach, CheckpointRef, Soc2Report } from './report-types.js';
import { churnChart, inventoryChart, latencyChart } from './svg-charts.js';

/** Sections 1-4 of the HTML report and its summary cards (rendering only; numbers come from report-data). */

export function summaryCards(r: Soc2Report): string {
  const i = r.integrity;
  const integrityTone = i.status === 'verified' ? 'good' : i.status === 'failed' ? 'bad' : 'warn';
  const total = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
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
      `${num(total(r.inventory.start))} → ${num(total(r.inventory.end))}`,
      `${num(r.inventory.totals.issued)} issued, ${num(r.inventory.totals.expired + r.inventory.totals.revoked + r.inventory.totals.evicted + r.inventory.totals.vanished)} ended`,
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

export function integritySection(r: Soc2Report): string {
  const i = r.integrity;
  const badge = i.status === 'verified' ? 'good' : i.status === 'failed' ? 'bad' : 'warn';
  const range = r.ledger.range;
  const kv = `<div class="kv">
<div>Result</div><div><span class="badge ${badge}">${esc(i.verdict)}</span> ${i.status === 'verified' ? `${num(i.recordsChecked)} records re-hashed; the chain reaches a signature` : esc(i.reason ?? '')}</div>
<div>Anchors</div><div>${i.anchored ? 'anchored outside the database' : '<span class="badge warn">anchored: false</span> the key or checkpoint log used is not independent of the database'}<br>${i.anchors.map(esc).join('<br>')}</div>
<div>Records</div><div>${range ? `seq ${num(range.firstSeq)} – ${num(range.lastSeq)} (${num(range.records)} records${range.timeOutliers > 0 ? `, ${range.timeOutliers} with a time outside the period` : ''})` : 'none in the period'}</div>
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
        cell: (x) =>
          num(
            x.k === 'All kinds'
              ? Object.values(inv.start).reduce((a, b) => a + b, 0)
              : inv.start[x.k],
          ),
      },
      { head: 'Issued', numeric: true, cell: (x) => num(x.l?.issued) },
      { head: 'Refreshed', numeric: true, cell: (x) => num(x.l?.refreshed) },
      { head: 'Revoked', numeric: true, cell: (x) => num(x.l?.revoked) },
      { head: 'Expired', numeric: true, cell: (x) => num(x.l?.expired) },
      { head: 'Evicted', numeric: true, cell: (x) => num(x.l?.evicted) },
      { head: 'Vanished', numeric: true, cell: (x) => num(x.l?.vanished) },
      {
        head: 'Baseline ±',
        numeric: true,
        cell: (x) =>
          signed(
            x.k === 'All kinds'
              ? Object.values(inv.adjustments).reduce((a, b) => a + b, 0)
              : (inv.adjustments[x.k] ?? 0),
          ),
      },
      {
        head: 'Live at end',
        numeric: true,
        cell: (x) =>
          num(
            x.k === 'All kinds' ? Object.values(inv.end).reduce((a, b) => a + b, 0) : inv.end[x.k],
          ),
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
  const startTotal = Object.values(inv.start).reduce((a, b) => a + b, 0);
  return section(
    2,
    'inventory',
    'Token inventory and churn',
    ['CC6.1'],
    'Tokens cached in Redis per kind at the start and end of the period, and what happened to them in between (Redis keyspace notifications, repaired by reconciliation after blind spots). Baseline ± is what a keyspace baseline (SCAN at start-up) or reconciliation corrected: live at end = live at start + issued − revoked − expired − evicted − vanished ± baseline.',
    `${t}${churnChart(inv.churn.buckets, inv.churn.bucketMs)}${inventoryChart(inv.churn.buckets, inv.churn.bucketMs, startTotal)}<h3>Identity-provider events</h3>${pt}`,
  );
}

export function revocationSection(r: Soc2Report): string {
  const rv = r.revocations;
  const s = rv.latencySeconds;
  const stats = table(
    [rv],
    [
      { head: 'Measured', numeric: true, cell: (x) => num(x.count) },
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

export function ttlSection(r: Soc2Report): string {
  const rows = Object.entries(r.ttl.perKind).sort(([a], [b]) => a.localeCompare(b));
  const t = table(
    rows,
    [
      { head: 'Kind', cell: ([k]) => esc(k) },
      { head: 'Written', numeric: true, cell: ([, v]) => num(v.written) },
      { head: 'With TTL', numeric: true, cell: ([, v]) => num(v.withTtl) },
      {
        head: 'No expiry',
        numeric: true,
        cell: ([, v]) => (v.noExpiry > 0 ? `<strong>${num(v.noExpiry)}</strong>` : '0'),
      },
      { head: 'TTL removed', numeric: true, cell: ([, v]) => num(v.persisted) },
      {
        head: 'p95 TTL',
        numeric: true,
        cell: ([, v]) => esc(v.p95TtlSeconds === null ? '—' : duration(v.p95TtlSeconds * 1000)),
      },
      {
        head: 'Max TTL',
        numeric: true,
        cell: ([, v]) => esc(v.maxTtlSeconds === null ? '—' : duration(v.maxTtlSeconds * 1000)),
      },
      {
        head: 'Policy',
        numeric: true,
        cell: ([, v]) =>
          esc(v.policyMaxTtlSeconds === null ? 'none' : duration(v.policyMaxTtlSeconds * 1000)),
      },
      {
        head: 'Over policy',
        numeric: true,
        cell: ([, v]) =>
          v.overPolicy === null
            ? '—'
            : v.overPolicy > 0
              ? `<strong>${num(v.overPolicy)}</strong>`
              : '0',
      },
      {
        head: 'Conformance',
        numeric: true,
        cell: ([, v]) =>
          esc(
            v.withTtl + v.noExpiry === 0
              ? '—'
              : percent((v.withTtl - (v.overPolicy ?? 0)) / (v.withTtl + v.noExpiry)),
          ),
      },
    ],
    'No token written in the period.',
  );
  return section(
    4,
    'ttl',
    'TTL policy conformance',
    ['CC6.1'],
    'Every credential should expire: TTLs at write time against the maximum each token rule allows, and tokens written or left without any expiry.',
    `${t}<h3>Tokens without expiry</h3>${table(r.ttl.withoutExpiry, findingColumns, 'None.')}<h3>TTLs above policy</h3>${table(r.ttl.overPolicy, findingColumns, 'None.')}`,
  );
}
