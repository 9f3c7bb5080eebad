import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport } from '../../src/compliance/report-data.js';
import { REPORT_CSP, renderReportHtml } from '../../src/compliance/report-html.js';
import { readOnly, tempDir } from './helpers.js';
import { dayScenario } from './day-scenario.js';
import { DAY, T0 } from './scenario.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

async function html(): Promise<string> {
  const s = dayScenario();
  const db = readOnly(s.dbPath);
  try {
    const r = await buildReport({
      store: new LedgerStore(db),
      from: T0,
      to: T0 + DAY,
      trusted: s.trusted,
      policy: {
        seq: null,
        time: null,
        maxTtlSeconds: { access_token: 3600, session: 8 * 3600 },
        ttlToleranceSeconds: 2,
        revocationSlaSeconds: 30,
        revocationEventTypes: null,
        digest: null,
      },
      now: () => T0 + DAY + 3_600_000,
    });
    return renderReportHtml(r);
  } finally {
    db.close();
  }
}

describe('the SOC 2 report in headless Chromium', () => {
  it('is a self-contained page with every section and chart, and prints', async () => {
    const page = await html();
    expect(page).toContain(
      `<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP.replaceAll("'", '&#39;')}">`,
    );
    expect(page).not.toMatch(/<script|<link|<img|<iframe|\bhref=|\bsrc=|url\(|@import/i);

    const file = join(tempDir('tw-report-'), 'soc2-report.html');
    writeFileSync(file, page);
    const context = await browser.newContext({
      viewport: { width: 1100, height: 900 },
      deviceScaleFactor: 1,
    });
    const tab = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    tab.on('request', (r) => requests.push(r.url()));
    tab.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    tab.on('pageerror', (e) => problems.push(e.message));
    await tab.goto(`file://${file}`);

    expect(requests).toEqual([`file://${file}`]); // nothing fetched besides the page itself
    expect(problems).toEqual([]); // no CSP violation, no error
    const sections = await tab.locator('section[id]').all();
    const ids = await Promise.all(sections.map((l) => l.getAttribute('id')));
    expect(ids).toEqual([
      'integrity',
      'inventory',
      'revocation',
      'ttl',
      'anomalies',
      'response',
      'blind-spots',
      'access',
      'findings',
      'cache-health',
      'method',
    ]);
    const figures = await tab.locator('figure.chart').all();
    const charts = await Promise.all(
      figures.map(async (f) => ({
        id: (await f.getAttribute('id')) ?? '',
        shapes: await f.locator('svg').locator('rect, polyline, polygon').count(),
        w: (await f.locator('svg').boundingBox())?.width ?? 0,
      })),
    );
    expect(charts.map((c) => c.id)).toEqual([
      'chart-churn',
      'chart-inventory',
      'chart-latency',
      'chart-blindspots',
    ]);
    for (const c of charts) {
      expect(c.shapes, c.id).toBeGreaterThan(1);
      expect(c.w, c.id).toBeGreaterThan(500);
    }
    expect(await tab.textContent('#integrity')).toMatch(/verified/i);
    expect(await tab.textContent('#revocation')).toContain('okta-rev-109');
    expect(await tab.textContent('#blind-spots')).toContain('3 min');
    expect(await tab.locator('.card').count()).toBe(6);

    mkdirSync(ARTIFACTS, { recursive: true });
    await tab.screenshot({ path: join(ARTIFACTS, 'soc2-report.png'), fullPage: true });
    if (process.env.TW_REPORT_SHOTS) {
      const box = await tab.locator('main').boundingBox();
      const h = Math.ceil((box?.y ?? 0) + (box?.height ?? 0) + 24);
      for (let y = 0, i = 0; y < h; y += 1100, i++)
        await tab.screenshot({
          path: join(process.env.TW_REPORT_SHOTS, `part-${i}.png`),
          clip: { x: 0, y, width: 1100, height: Math.min(1100, h - y) },
          fullPage: true,
        });
      writeFileSync(join(process.env.TW_REPORT_SHOTS, 'report.html'), page);
    }
    const pdf = await tab.pdf({ format: 'A4', printBackground: true });
    writeFileSync(join(ARTIFACTS, 'soc2-report.pdf'), pdf);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    await context.close();
  }, 60_000);
});
