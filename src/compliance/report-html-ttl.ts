import { cellTime, duration, esc, num, percent, seconds, table } from './html-format.js';
import { findingColumns, section } from './report-html-parts.js';
import type { Soc2Report } from './report-types.js';

/** Section 4 of the HTML report: TTL policy conformance under the policy in force. */

export function ttlSection(r: Soc2Report): string {
  const rows = Object.entries(r.ttl.perKind).sort(([a], [b]) => a.localeCompare(b));
  const unknown = '<span class="badge warn">unknown</span>';
  const t = table(
    rows,
    [
      { head: 'Kind', cell: ([k]) => esc(k) },
      { head: 'TTL stated', numeric: true, cell: ([, v]) => num(v.withTtl) },
      {
        head: 'No expiry',
        numeric: true,
        cell: ([, v]) => (v.noExpiry > 0 ? `<strong>${num(v.noExpiry)}</strong>` : '0'),
      },
      { head: 'TTL not read', numeric: true, cell: ([, v]) => num(v.unknownTtl) },
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
          !v.policyKnown
            ? unknown
            : v.policyMaxTtlSeconds === null
              ? 'no maximum'
              : `${esc(duration(v.policyMaxTtlSeconds * 1000))} <div class="seq">+${esc(String(v.toleranceSeconds ?? 0))} s tolerance</div>`,
      },
      { head: 'Tokens', numeric: true, cell: ([, v]) => num(v.tokens) },
      {
        head: 'Over policy',
        numeric: true,
        cell: ([, v]) =>
          v.overPolicy === null
            ? unknown
            : v.overPolicy > 0
              ? `<strong>${num(v.overPolicy)}</strong>`
              : '0',
      },
      {
        head: 'Without expiry',
        numeric: true,
        cell: ([, v]) => (v.noExpiryTokens > 0 ? `<strong>${num(v.noExpiryTokens)}</strong>` : '0'),
      },
      {
        head: 'Conformance',
        numeric: true,
        cell: ([, v]) =>
          v.conformance === null ? (v.policyKnown ? '—' : unknown) : esc(percent(v.conformance)),
      },
    ],
    'No token record stated a TTL in the period.',
  );
  return section(
    4,
    'ttl',
    'TTL policy conformance',
    ['CC6.1'],
    'Every credential should expire: the TTLs Redis reported (writes, reconciliation, baseline SCANs) against the maximum each token rule allowed when the record was written, with the same tolerance the correlator applies. TTL stated, no expiry (TTL removed included) and TTL not read count records; tokens, over policy and without expiry count distinct tokens, the same sets the findings below are opened for.',
    `${policyBlock(r)}${t}${agreementNote(r)}<h3>Tokens without expiry</h3>${table(r.ttl.withoutExpiry, findingColumns, 'None.')}<h3>TTLs above policy</h3>${table(r.ttl.overPolicy, findingColumns, 'None.')}`,
  );
}

/** The policy the report judged by, or a warning that none was recorded. */
export function policyBlock(r: Soc2Report): string {
  const p = r.policy;
  if (p.source === 'none')
    return '<p class="lead"><span class="badge warn">no policy</span> The ledger records no policy (<span class="mono">config.policy</span>) for this period and none was given (<span class="mono">report --config</span>): TTL conformance is unknown, not 100 %.</p>';
  const rows = table(
    p.inForce,
    [
      {
        head: 'From',
        cell: (x) =>
          x.seq === null
            ? 'the whole period (<span class="mono">--config</span>)'
            : `${cellTime(x.time ?? 0)}<div class="seq">#${x.seq}</div>`,
      },
      {
        head: 'Maximum TTL per kind',
        cell: (x) =>
          esc(
            Object.entries(x.maxTtlSeconds)
              .map(([k, v]) => `${k}: ${v === null ? 'none' : duration(v * 1000)}`)
              .join(', ') || 'no token rule',
          ),
      },
      { head: 'Tolerance', numeric: true, cell: (x) => esc(`${x.ttlToleranceSeconds} s`) },
      { head: 'Revocation SLA', numeric: true, cell: (x) => esc(seconds(x.revocationSlaSeconds)) },
      {
        head: 'Digest',
        cell: (x) => `<span class="mono">${esc((x.digest ?? '—').slice(0, 16))}</span>`,
      },
    ],
    '',
  );
  const before =
    p.recordsWithoutPolicy > 0
      ? `<p class="lead">${num(p.recordsWithoutPolicy)} TTL(s) were recorded before any policy was in force; their conformance is unknown.</p>`
      : '';
  return `<h3>Policy in force</h3>${rows}${before}`;
}

/** Says so when the table and the findings do not name the same tokens. */
function agreementNote(r: Soc2Report): string {
  const a = r.ttl.agreement;
  const parts: string[] = [];
  const say = (what: string, x: { withoutFinding: number; findingNotCounted: number }) => {
    if (x.withoutFinding > 0)
      parts.push(`${num(x.withoutFinding)} token(s) counted ${what} that no finding names`);
    if (x.findingNotCounted > 0)
      parts.push(
        `${num(x.findingNotCounted)} token(s) a finding names ${what} that the table does not count`,
      );
  };
  say('over policy', a.overPolicy);
  say('without expiry', a.withoutExpiry);
  return parts.length === 0
    ? ''
    : `<p class="lead"><span class="badge warn">check</span> ${esc(parts.join('; '))} (a rule disabled by the policy, a correlator limit, or records outside the period).</p>`;
}
