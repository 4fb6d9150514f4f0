// The run view in a real browser (Debian's chromium, headless, driven by playwright-core) over a
// real refresh: seed synthetic rows, start a worker and the dashboard in-process, sign in as the
// operator, start a refresh by clicking, watch chunks get indexed, pause, see why a run waits,
// resume, and see the run succeed; then a dry run from the form, and a shadow build held for
// approval whose comparison is shown and approved by clicking. Run with:
// bash scripts/run-tests.sh test/browser
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  CHUNK_QUEUE,
  STAGE_QUEUE,
  getMedia,
  repoRoot,
  seedSynthetic,
  type RunJobData,
} from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { createDashboardWorld, type DashboardWorld } from '../helpers/dashboard.js';

const chromiumPath = '/usr/bin/chromium';
const resultsDir = path.join(repoRoot, 'test-results');
const ROWS = 40_000;
// Small chunks and one chunk job at a time: the chunk phase lasts long enough to pause it.
const CHUNK_ROWS = 100;
const STEP_MS = 90_000;
const WAITING = 'Elasticsearch cluster health is red (test)';

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
  }
}

/** The number the run page shows as chunks indexed. */
async function chunksIndexed(page: Page): Promise<number> {
  return Number(await page.getByTestId('chunks-indexed').textContent());
}

describe('dashboard run view in a browser', { timeout: 600_000 }, () => {
  let w: DashboardWorld;
  let worker: WorkerApp | undefined;
  let browser: Browser | undefined;
  let operator: BrowserContext;
  let page: Page;
  let runId: string;
  const pageErrors: string[] = [];

  /** Starts a refresh through the API as the operator, opens its run page, waits for its hold. */
  const openHeldRun = async (json: Record<string, unknown>): Promise<string> => {
    const res = await w.request('/api/runs', { as: 'operator', method: 'POST', json });
    assert.equal(res.status, 202, await res.clone().text());
    const id = ((await res.json()) as { runId: string }).runId;
    await page.goto(`${w.dashboard.url}/runs/${id}`);
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^awaiting-approval$/ })
      .waitFor({ timeout: 150_000 });
    await page.getByRole('heading', { name: 'Awaiting approval' }).waitFor();
    return id;
  };

  before(async () => {
    assert.ok(
      existsSync(chromiumPath),
      `${chromiumPath} is missing: apt-get update && apt-get install -y chromium`,
    );
    w = await createDashboardWorld({
      CHUNK_SIZE_ROWS: String(CHUNK_ROWS),
      WORKER_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
    });
    await seedSynthetic(w.t.dbs.catalog, getMedia(w.t.media, 'image'), { rows: ROWS });
    worker = await startWorker(w.t.config, w.t.logger);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
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
    operator = await browser.newContext({
      httpCredentials: { username: 'operator', password: w.tokens.operator },
      viewport: { width: 1360, height: 1000 },
    });
    page = await operator.newPage();
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
    });
    await mkdir(resultsDir, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await worker?.close();
    await w?.close();
  });

  it('signs the operator in and starts a refresh from the form', { timeout: STEP_MS }, async () => {
    await page.goto(`${w.dashboard.url}/`);
    await page.getByTestId('role').filter({ hasText: 'operator' }).waitFor();
    await page.getByRole('heading', { name: 'Refresh runs' }).waitFor();
    await page.getByLabel('Media type').selectOption('image');
    await page.getByLabel('Profile').selectOption('production');
    await Promise.all([
      page.waitForURL(/\/runs\/\d{8}-\d{6}-[0-9a-f]{4}$/),
      page.getByRole('button', { name: 'Start refresh' }).click(),
    ]);
    runId = new URL(page.url()).pathname.split('/').pop() as string;
    const run = await w.t.store.getRun(runId);
    assert.equal(run.media, 'image');
    assert.equal(run.requested_by, 'operator');
  });

  it('shows the run progressing: chunks indexed goes up', { timeout: STEP_MS }, async () => {
    // Polls the page's DOM (the page's CSP forbids the string predicates of waitForFunction).
    const first = await until('a chunk indexed on the page', async () => {
      const n = await chunksIndexed(page);
      return n > 0 ? n : undefined;
    });
    await until('more chunks indexed on the page', async () =>
      (await chunksIndexed(page)) > first ? true : undefined,
    );
    assert.ok((await chunksIndexed(page)) > first);
    // The stage table, chunk grid and timeline are drawn from the same data.
    await page.locator('#stages').getByText('preflight').waitFor();
    assert.ok((await page.locator('#chunks .grid .cell').count()) === ROWS / CHUNK_ROWS);
    assert.ok((await page.locator('#timeline svg rect.tl-chunk').count()) > 0);
  });

  it(
    'pauses the run: the page and the API say paused, and no new job starts',
    { timeout: STEP_MS },
    async () => {
      await page.getByRole('button', { name: 'Pause' }).click();
      await page
        .getByTestId('run-status')
        .filter({ hasText: /^paused$/ })
        .waitFor({ timeout: 30_000 });
      const res = await w.request(`/api/runs/${runId}`, { as: 'viewer' });
      const details = (await res.json()) as {
        run: { status: string };
        chunks: { total: number; indexed: number };
      };
      assert.equal(details.run.status, 'paused');
      assert.equal(await page.getByRole('button', { name: 'Resume' }).isEnabled(), true);
      assert.equal(await page.getByRole('button', { name: 'Pause' }).isEnabled(), false);

      // The workers park the run's jobs instead of starting them: once the running ones finish,
      // nothing of the run is active and what is left waits in the delayed set.
      const parked = await until('the run to settle with its jobs parked', async () => {
        const [active, waiting, delayed] = await Promise.all([
          w.t.queues.chunk.getActive(),
          w.t.queues.chunk.getWaiting(),
          w.t.queues.chunk.getDelayed(),
        ]);
        const ofRun = (jobs: { data: unknown }[]) =>
          jobs.filter((j) => (j.data as RunJobData).runId === runId).length;
        const { rows } = await w.t.dbs.api.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status = 'running'`,
          [runId],
        );
        return ofRun(active) === 0 && ofRun(waiting) === 0 && rows[0]?.n === 0 && ofRun(delayed) > 0
          ? ofRun(delayed)
          : undefined;
      });
      assert.ok(parked > 0);
      const progress = await w.t.store.chunkProgress(runId);
      assert.ok(progress.indexed < progress.total, 'paused before every chunk was indexed');
      // Admission control's reason shows on the run page (workers record it; set here).
      await w.t.store.setWaiting(runId, WAITING);
      await page.getByTestId('waiting').filter({ hasText: WAITING }).waitFor();
      assert.match(
        await page.getByTestId('waiting').innerText(),
        /^waiting: .* · since \d\d:\d\d$/,
      );
      await page.screenshot({
        path: path.join(resultsDir, 'dashboard-paused.png'),
        fullPage: true,
      });
    },
  );

  it('hides the controls from the viewer', { timeout: STEP_MS }, async () => {
    const viewer = await (browser as Browser).newContext({
      httpCredentials: { username: 'viewer', password: w.tokens.viewer },
    });
    try {
      const vpage = await viewer.newPage();
      await vpage.goto(`${w.dashboard.url}/runs/${runId}`);
      await vpage.getByTestId('run-status').filter({ hasText: 'paused' }).waitFor();
      await vpage.getByText('Read-only: signed in as viewer.').waitFor();
      assert.equal(await vpage.getByRole('button', { name: 'Resume' }).count(), 0);
      assert.equal(await vpage.getByRole('button', { name: 'Pause' }).count(), 0);
      await vpage.goto(`${w.dashboard.url}/`);
      await vpage.getByRole('link', { name: runId }).waitFor();
      assert.equal(await vpage.getByRole('button', { name: 'Start refresh' }).count(), 0);
      // The runs list says why the run waits, too.
      const row = vpage.getByRole('row').filter({ has: vpage.getByRole('link', { name: runId }) });
      await row.getByTestId('waiting').filter({ hasText: WAITING }).waitFor();
      await w.t.store.setWaiting(runId, null);
    } finally {
      await viewer.close();
    }
  });

  it('resumes the run and shows it succeed', { timeout: 240_000 }, async () => {
    await page.getByRole('button', { name: 'Resume' }).click();
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^(running|succeeded)$/ })
      .waitFor({ timeout: 30_000 });
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^succeeded$/ })
      .waitFor({ timeout: 200_000 });
    const run = await w.t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(await chunksIndexed(page), ROWS / CHUNK_ROWS);
    // The report's per-source counts and the clean step's counts are on the page.
    await page.locator('#sources tbody tr').first().waitFor();
    await page.locator('#cleaning tbody tr').first().waitFor();
    await page
      .locator('#rejected')
      .getByText(/No row rejected|Reason/)
      .first()
      .waitFor();
    const audit = await page.locator('#audit tbody').innerText();
    for (const action of ['start', 'pause', 'resume'])
      assert.match(audit, new RegExp(`operator\\s+${action}`));
    await page.screenshot({ path: path.join(resultsDir, 'dashboard.png'), fullPage: true });
  });

  it(
    'lists the run as succeeded, and shows Bull Board with both queues',
    { timeout: STEP_MS },
    async () => {
      await page.goto(`${w.dashboard.url}/`);
      const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: runId }) });
      await row.getByText('succeeded').waitFor();
      // The schedule table of the default schedules file, with next fire times.
      const schedules = page.locator('#schedules');
      await schedules.getByText('image-monthly').waitFor();
      await schedules.getByText('audio-daily').waitFor();
      assert.equal(await schedules.locator('ul.fires li').count(), 6);
      await page.screenshot({ path: path.join(resultsDir, 'dashboard-runs.png'), fullPage: true });
      const board = await operator.newPage();
      // Bull Board's page loads nothing from another origin, and its policy blocks nothing.
      const origin = new URL(w.dashboard.url).origin;
      const outside: string[] = [];
      const boardErrors: string[] = [];
      board.on('request', (r) => {
        if (!r.url().startsWith('data:') && new URL(r.url()).origin !== origin)
          outside.push(r.url());
      });
      board.on('pageerror', (err) => boardErrors.push(`pageerror: ${err.message}`));
      board.on('console', (msg) => {
        if (msg.type() === 'error') boardErrors.push(`console: ${msg.text()}`);
      });
      try {
        await board.goto(`${w.dashboard.url}/queues/`);
        await board.getByText(CHUNK_QUEUE).first().waitFor();
        await board.getByText(STAGE_QUEUE).first().waitFor();
        // A queue's job list too (it renders job data with its highlighter worker).
        await board.goto(`${w.dashboard.url}/queues/queue/${STAGE_QUEUE}?status=completed`);
        await board.getByText(`${runId}.report`).first().waitFor();
        await board.screenshot({ path: path.join(resultsDir, 'bull-board.png'), fullPage: true });
      } finally {
        await board.close();
      }
      assert.deepEqual(outside, [], 'requests to other origins');
      assert.deepEqual(boardErrors, [], 'script errors or blocked resources');
    },
  );

  it(
    'shows the plan of a dry run from the form, changing nothing',
    { timeout: STEP_MS },
    async () => {
      const runs = await w.t.dbs.api.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM freshet.runs',
      );
      await page.goto(`${w.dashboard.url}/`);
      await page.getByLabel('Media type').selectOption('image');
      await page.getByLabel('Shadow build').check();
      await page.getByRole('button', { name: 'Dry run' }).click();
      await page
        .getByTestId('plan-title')
        .filter({ hasText: 'Dry run: production refresh of image (shadow) — nothing was changed' })
        .waitFor();
      const plan = await page.locator('#plan').innerText();
      assert.match(plan, new RegExp(`${ROWS / CHUNK_ROWS} of about ${CHUNK_ROWS} rows`));
      assert.match(plan, /compare \(held for approval beyond thresholds\)/);
      assert.match(plan, new RegExp(`image-${runId}`), 'the alias is held by the first run');
      const after = await w.t.dbs.api.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM freshet.runs',
      );
      assert.equal(after.rows[0]?.n, runs.rows[0]?.n, 'no run was started');
    },
  );

  it(
    'shows a held shadow build with its comparison; the operator approves it',
    { timeout: 180_000 },
    async () => {
      // A third of the catalog gone and titles missing: beyond every threshold.
      await w.t.dbs.catalog.query(
        'DELETE FROM image WHERE get_byte(uuid_send(identifier), 0) < 85',
      );
      await w.t.dbs.catalog.query(
        'UPDATE image SET title = NULL WHERE get_byte(uuid_send(identifier), 1) < 128',
      );
      // Bigger chunks than the first run's, through the API: the build takes seconds.
      const shadowRun = await openHeldRun({ media: 'image', shadow: true, chunkSizeRows: 5000 });
      await page
        .getByTestId('approval-reasons')
        .getByText(/total rows change -3\d\.\d%/)
        .waitFor();
      const panel = await page.locator('#approval').innerText();
      assert.match(panel, /Rows per source, live vs shadow/);
      assert.match(panel, /total/);
      assert.match(panel, /Sampled documents: \d+ of \d+ differ/);
      assert.match(panel, /title/);
      await page.screenshot({
        path: path.join(resultsDir, 'dashboard-approval.png'),
        fullPage: true,
      });

      const viewer = await (browser as Browser).newContext({
        httpCredentials: { username: 'viewer', password: w.tokens.viewer },
      });
      try {
        const vpage = await viewer.newPage();
        await vpage.goto(`${w.dashboard.url}/runs/${shadowRun}`);
        await vpage.getByRole('heading', { name: 'Awaiting approval' }).waitFor();
        await vpage.getByText('an operator approves or discards it').waitFor();
        assert.equal(await vpage.getByRole('button', { name: 'Approve and promote' }).count(), 0);
      } finally {
        await viewer.close();
      }

      // The confirmation dialog: dismissed changes nothing, accepted approves.
      page.once('dialog', (dialog) => void dialog.dismiss());
      await page.getByRole('button', { name: 'Approve and promote' }).click();
      assert.equal((await w.t.store.getRun(shadowRun)).status, 'awaiting-approval');
      page.once('dialog', (dialog) => void dialog.accept());
      await page.getByRole('button', { name: 'Approve and promote' }).click();
      await page
        .getByTestId('run-status')
        .filter({ hasText: /^succeeded$/ })
        .waitFor({ timeout: 120_000 });
      await page.getByRole('heading', { name: 'Shadow comparison' }).waitFor();
      const audit = await page.locator('#audit tbody').innerText();
      assert.match(audit, /operator\s+approve/);
    },
  );

  it(
    'shows a build held by the shrink guard with its numbers; the operator discards it',
    { timeout: 180_000 },
    async () => {
      const alias = `${w.t.config.ELASTICSEARCH_INDEX_PREFIX}image`;
      const liveDocs = (await w.t.es.count({ index: alias })).count;
      // About 30% of the live rows gone upstream: beyond PROMOTE_MAX_DROP (10%).
      await w.t.dbs.catalog.query(
        'DELETE FROM image WHERE get_byte(uuid_send(identifier), 0) < 136',
      );
      await openHeldRun({ media: 'image', chunkSizeRows: 5000 });
      await page
        .getByTestId('shrink-drops')
        .getByText(new RegExp(`total rows drop [23]\\d\\.\\d% \\(${liveDocs} -> \\d+\\)`))
        .waitFor();
      assert.match(
        await page.getByTestId('approval-state').innerText(),
        /This build is held: it has fewer rows than the live build beyond the shrink guard/,
      );
      const panel = await page.locator('#approval').innerText();
      assert.match(panel, /Shrink guard: rows per source, live vs new build/);
      assert.match(panel, new RegExp(`total\\s+${liveDocs.toLocaleString('en')}`));
      await page.screenshot({
        path: path.join(resultsDir, 'dashboard-shrink-held.png'),
        fullPage: true,
      });

      page.once('dialog', (dialog) => void dialog.accept());
      await page.getByRole('button', { name: 'Discard build' }).click();
      await page
        .getByTestId('run-status')
        .filter({ hasText: /^cancelled$/ })
        .waitFor({ timeout: 60_000 });
      assert.equal((await w.t.es.count({ index: alias })).count, liveDocs, 'the live build serves');
      const audit = await page.locator('#audit tbody').innerText();
      assert.match(audit, /operator\s+discard/);
    },
  );

  it(
    'shows the live builds; the operator rolls back by clicking, the viewer has no button',
    { timeout: STEP_MS },
    async () => {
      const button = (p: Page) => p.getByRole('button', { name: 'Roll back image (production)' });
      const viewer = await (browser as Browser).newContext({
        httpCredentials: { username: 'viewer', password: w.tokens.viewer },
      });
      try {
        const vpage = await viewer.newPage();
        await vpage.goto(`${w.dashboard.url}/`);
        await vpage.locator('#builds').getByTestId('kept-run').filter({ hasText: runId }).waitFor();
        assert.equal(await button(vpage).count(), 0);
      } finally {
        await viewer.close();
      }
      await page.goto(`${w.dashboard.url}/`);
      const builds = page.locator('#builds');
      // The shadow build serves; the first run's build is kept.
      await builds.getByTestId('kept-run').filter({ hasText: runId }).waitFor();
      await button(page).waitFor();
      assert.equal(await button(page).isEnabled(), true);
      page.once('dialog', (dialog) => void dialog.dismiss());
      await button(page).click();
      assert.equal(
        (await w.t.dbs.api.query<{ c: string }>(`SELECT obj_description('image'::regclass) AS c`))
          .rows[0]?.c === `freshet run ${runId}`,
        false,
        'a dismissed confirm changes nothing',
      );
      page.once('dialog', (dialog) => void dialog.accept());
      await button(page).click();
      await builds
        .getByTestId('build-history')
        .filter({ hasText: new RegExp(`^rollback → ${runId} by operator`) })
        .waitFor({ timeout: 30_000 });
      await builds.getByTestId('serving-run').filter({ hasText: runId }).waitFor();
      const { rows } = await w.t.dbs.api.query<{ c: string }>(
        `SELECT obj_description('image'::regclass) AS c`,
      );
      assert.equal(rows[0]?.c, `freshet run ${runId}`);
      await page.screenshot({
        path: path.join(resultsDir, 'dashboard-builds.png'),
        fullPage: true,
      });
    },
  );

  it('raised no script error and no blocked resource in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
