import { describe, expect, it } from 'vitest';
import { archivedLedger } from '../audit/archive-helpers.js';
import { archivedIntegrity as integrity } from './archived-report.js';

describe('report over archived records', () => {
  // Records 122..243 (days 100..200) are in the archive file the database names; 1..121 (day 0)
  // in files named only inside it; the rest (day 300) in the database.
  it('a period wholly archived says so, naming the file, instead of just "no records"', async () => {
    const a = archivedLedger();
    const i = await integrity(a, 99, 150);
    expect(i.status).toBe('empty');
    expect(i.archived).toEqual([expect.objectContaining({ fromSeq: 122, records: 122 })]);
    expect(i.reason).toMatch(/the period's records are archived \(seq 122\.\.243 in .*\.twa\.gz\)/);
    expect(i.problems).toEqual([]);
    // seq 1..121 (day 0) were sealed by a signed checkpoint before day 99: not of this period.
    expect(i.archivedEarlier).toBeNull();
  });

  it('a period reaching back to day 0 names the records archived before the listed range', async () => {
    const a = archivedLedger();
    const i = await integrity(a, -1, 150);
    expect(i.archived.map((x) => [x.fromSeq, x.toSeq])).toEqual([[122, 243]]);
    expect(i.archivedEarlier).toEqual({ toSeq: 121, namedIn: i.archived[0]!.file });
  });

  it('a period partly archived lists the archived range next to the verified stored records', async () => {
    const a = archivedLedger();
    const i = await integrity(a, 150, 400);
    expect(i.problems).toEqual([]);
    expect(i.status).toBe('verified');
    expect(i.anchor?.source).toBe('archived');
    expect(i.archived.map((x) => [x.fromSeq, x.toSeq])).toEqual([[122, 243]]);
    expect(i.archivedEarlier).toBeNull();
  });

  it('a period before the archive the database names points to the archive files', async () => {
    const a = archivedLedger();
    const i = await integrity(a, 0, 1);
    expect(i.status).toBe('empty');
    expect(i.archived).toEqual([]);
    expect(i.reason).toMatch(/moved to archive files .*newest archive is seq 122\.\.243/);
  });
});
