import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { after, before, describe, it } from 'node:test';
import {
  ConflictError,
  createEsClient,
  loadMediaCatalog,
  type EsClient,
  type FilteredMode,
  type MediaCatalog,
  type PromotionRow,
} from '@freshet/core';
import { startWorker } from '@freshet/worker';
import { rollbackMedia, startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  exactnessProblems,
  accounting,
  faultDefinition,
  indexChecksum,
  seedFaultTable,
  tableChecksum,
  waitForRunStatus,
  writeFaultMedia,
} from '../helpers/faults.js';
import {
  holdTable,
  startProbes,
  startSearchLoad,
  type ProbeRecord,
} from '../helpers/live-reader.js';
import { waitUntil } from '../helpers/backends.js';
import { runCli } from '../helpers/processes.js';

/** The clip media type in one filtered mode, as a definitions file. */
const mediaFile = (mode: FilteredMode) =>
  writeFaultMedia({ clip: { ...faultDefinition('clip'), filtered: mode } });

/** What a client of the API sees of one build: counts and digests of table and both aliases. */
interface Served {
  readonly rows: number;
  readonly table: string;
  readonly docs: number;
  readonly main: string;
  readonly filteredDocs: number;
  readonly filtered: string;
  /** The run whose comment the live table carries. */
  readonly tableRun: string | null;
}

async function served(t: TestEnv): Promise<Served> {
  const alias = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
  const { rows } = await t.dbs.api.query<{ n: number; c: string | null }>(
    `SELECT count(*)::int AS n, obj_description('clip'::regclass, 'pg_class') AS c FROM clip`,
  );
  return {
    rows: rows[0]?.n ?? -1,
    table: await tableChecksum(t.dbs.api, 'clip', 'id'),
    docs: (await t.es.count({ index: alias })).count,
    main: await indexChecksum(t.es, alias),
    filteredDocs: (await t.es.count({ index: `${alias}-filtered` })).count,
    filtered: await indexChecksum(t.es, `${alias}-filtered`),
    tableRun: rows[0]?.c?.replace('freshet run ', '') ?? null,
  };
}

/** A refresh of clip by a worker that reads `media` (the definitions as deployed then). */
async function refresh(t: TestEnv, file: string, media: MediaCatalog): Promise<string> {
  const worker = await startWorker({ ...t.config, FRESHET_MEDIA_FILE: file }, t.logger);
  try {
    const runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media, queues: t.queues },
      { media: 'clip' },
    );
    const run = await waitForRunStatus(t.store, runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.deepEqual(exactnessProblems(await accounting(t, runId, media)), []);
    return runId;
  } finally {
    await worker.close();
  }
}

async function listIndices(t: TestEnv): Promise<string[]> {
  const alias = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
  return (await t.es.cat.indices({ index: `${alias}-*`, format: 'json', h: 'index' }))
    .map((i) => i.index ?? '')
    .sort();
}

/**
 * Build A (filtered alias as an index of its own), change the upstream, build B (filtered alias
 * as a filter): `freshet rollback clip` serves A's table and documents exactly, a second rollback
 * B's, while searches of both aliases and counts of the API table run without pause and never
 * fail. The next promotion keeps the build it replaced and deletes the older one.
 */
describe('rollback in one command', { timeout: 300_000 }, () => {
  let t: TestEnv;
  let searcher: EsClient;
  const files = { index: mediaFile('index'), alias: mediaFile('alias') };
  const media = { index: loadMediaCatalog(files.index), alias: loadMediaCatalog(files.alias) };
  let runA = '';
  let runB = '';
  let servedA: Served;
  let servedB: Served;
  let first: { code: number | null; stdout: string; stderr: string };
  let afterFirst: Served;
  let afterSecond: Served;
  let refusedEmpty: unknown;
  let answers: Record<'main' | 'filtered', number[]>;
  let failures: string[];
  let probes: ProbeRecord;

  const deps = () => ({
    api: t.dbs.api,
    es: t.es,
    media: media.alias,
    config: t.config,
    queues: t.queues,
  });

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: files.alias, CHUNK_SIZE_ROWS: '100' });
    searcher = createEsClient(t.config);
    await seedFaultTable(t.dbs.catalog, 'clip', 400);
    runA = await refresh(t, files.index, media.index);
    servedA = await served(t);
    refusedEmpty = await rollbackMedia(deps(), 'clip', undefined, 'test').catch((e: unknown) => e);

    // B differs from A in rows, in values and in its filtered mode.
    await t.dbs.catalog.query(`UPDATE clip SET title = title || ' (v2)' WHERE id % 3 = 0`);
    await t.dbs.catalog.query(`DELETE FROM clip WHERE id % 11 = 0`);
    await seedFaultTable(t.dbs.catalog, 'clip', 90, { from: 5000 });
    runB = await refresh(t, files.alias, media.alias);
    servedB = await served(t);

    const alias = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
    const load = startSearchLoad(searcher, [
      ['main', alias],
      ['filtered', `${alias}-filtered`],
    ]);
    ({ answers, failures } = load);
    const probing = startProbes(t.config.API_DATABASE_URL, 'clip', 50);
    try {
      // The loads see B first, then A, then B again.
      const sawBuild = async (b: Served) => {
        const since = { main: answers.main.length, filtered: answers.filtered.length };
        const probed = probing.record().answers.length;
        await waitUntil(
          () =>
            answers.main.slice(since.main).includes(b.docs) &&
            answers.filtered.slice(since.filtered).includes(b.filteredDocs) &&
            probing.record().answers.slice(probed).includes(b.rows),
          'the searches and the probes answer from the build now serving',
        );
      };
      await sawBuild(servedB);
      first = await runCli(['rollback', 'clip'], t.env);
      afterFirst = await served(t);
      await sawBuild(servedA);
      await rollbackMedia(deps(), 'clip', 'production', 'test');
      await sawBuild(servedB);
      afterSecond = await served(t);
    } finally {
      await load.stop();
      probes = await probing.stop();
    }
  });

  after(async () => {
    await searcher?.close();
    await t?.close();
  });

  it('refuses to roll back when nothing is kept yet', () => {
    assert.ok(refusedEmpty instanceof ConflictError, String(refusedEmpty));
    assert.match(
      refusedEmpty.message,
      /^nothing to roll back to for clip \(production\): there is no kept table clip_previous/,
    );
  });

  it('built two different builds', () => {
    assert.notEqual(servedA.table, servedB.table);
    assert.notEqual(servedA.rows, servedB.rows);
    assert.notEqual(servedA.filteredDocs, servedB.filteredDocs);
    assert.equal(servedA.tableRun, runA);
    assert.equal(servedB.tableRun, runB);
  });

  it('`freshet rollback clip` serves build A exactly: table, both aliases', () => {
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      new RegExp(
        `^rolled back clip \\(production\\): run ${runA} serves again .*run ${runB} is kept`,
      ),
    );
    assert.deepEqual(afterFirst, servedA);
  });

  it('a second rollback serves build B exactly', () => {
    assert.deepEqual(afterSecond, servedB);
  });

  it('not one search or API-table query failed, and every answer was a whole build', () => {
    assert.deepEqual(failures, []);
    assert.deepEqual(probes.failures, []);
    assert.ok(probes.done > 5, `${probes.done} probes`);
    assert.deepEqual(new Set(answers.main), new Set([servedA.docs, servedB.docs]));
    assert.deepEqual(
      new Set(answers.filtered),
      new Set([servedA.filteredDocs, servedB.filteredDocs]),
    );
    assert.deepEqual(new Set(probes.answers), new Set([servedA.rows, servedB.rows]));
  });

  it('records both rollbacks in the history and the audit log', async () => {
    const history = await t.store.listPromotions(t.queues.prefix, { media: 'clip' });
    const brief = (p: PromotionRow) => [p.action, p.run_id, p.replaced_run_id, p.actor];
    assert.deepEqual(history.map(brief).reverse(), [
      ['promote', runA, null, 'cli'],
      ['promote', runB, runA, 'cli'],
      ['rollback', runA, runB, `cli:${userInfo().username}`],
      ['rollback', runB, runA, 'test'],
    ]);
    const { rows } = await t.dbs.api.query<{ run_id: string; actor: string }>(
      `SELECT run_id, actor FROM freshet.audit WHERE action = 'rollback' ORDER BY id`,
    );
    assert.deepEqual(rows, [
      { run_id: runA, actor: `cli:${userInfo().username}` },
      { run_id: runB, actor: 'test' },
    ]);
  });

  it('refuses while the kept build is not green; nothing changes', async () => {
    // One node cannot place a replica: the kept build (A) turns yellow.
    const kept = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip-${runA}*`;
    await t.es.indices.putSettings({ index: kept, settings: { index: { number_of_replicas: 1 } } });
    try {
      await assert.rejects(
        rollbackMedia(deps(), 'clip', 'production', 'test'),
        (err: Error) =>
          err instanceof ConflictError &&
          /^cannot roll back clip \(production\): the kept build's indices .* are not green \(yellow: \d+ unassigned shards/.test(
            err.message,
          ),
      );
      assert.deepEqual(await served(t), afterSecond, 'still build B, table and aliases');
    } finally {
      await t.es.indices.putSettings({
        index: kept,
        settings: { index: { number_of_replicas: 0 } },
      });
    }
  });

  it(
    'refuses while a refresh is active; the next promotion keeps B and deletes A',
    { timeout: 120_000 },
    async () => {
      const worker = await startWorker(t.config, t.logger);
      try {
        const runC = await startRefresh(
          { config: t.config, api: t.dbs.api, media: media.alias, queues: t.queues },
          { media: 'clip' },
        );
        await assert.rejects(
          rollbackMedia(deps(), 'clip', undefined, 'test'),
          (err: Error) =>
            err instanceof ConflictError &&
            new RegExp(
              `^cannot roll back clip \\(production\\): run ${runC} of it is (queued|running)`,
            ).test(err.message),
        );
        const run = await waitForRunStatus(t.store, runC);
        assert.equal(run.status, 'succeeded', run.error ?? '');
        const prefix = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
        assert.deepEqual(await listIndices(t), [`${prefix}-${runB}`, `${prefix}-${runC}`].sort());
        const { rows } = await t.dbs.api.query<{ c: string | null }>(
          `SELECT obj_description('clip_previous'::regclass, 'pg_class') AS c`,
        );
        assert.equal(rows[0]?.c, `freshet run ${runB}`);
        // And a rollback from C goes to B.
        await rollbackMedia(deps(), 'clip', undefined, 'test');
        assert.deepEqual(await served(t), servedB);
      } finally {
        await worker.close();
      }
    },
  );
});

describe('a rollback behind a long reader of the live table', { timeout: 180_000 }, () => {
  let t: TestEnv;
  const file = mediaFile('alias');

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: file });
    await seedFaultTable(t.dbs.catalog, 'clip', 200);
    await refresh(t, file, t.media);
    await seedFaultTable(t.dbs.catalog, 'clip', 30, { from: 5000 });
    await refresh(t, file, t.media);
  });

  after(async () => {
    await t?.close();
  });

  it('waits with short locks, naming the reader; the API never queues behind it', async () => {
    const kept = await t.dbs.api.query<{ c: string }>(
      `SELECT obj_description('clip_previous'::regclass, 'pg_class') AS c`,
    );
    const reader = await holdTable(t.config.API_DATABASE_URL, 'clip');
    const probing = startProbes(t.config.API_DATABASE_URL, 'clip', 50);
    let released = false;
    try {
      const rollback = rollbackMedia(
        { api: t.dbs.api, es: t.es, media: t.media, config: t.config, queues: t.queues },
        'clip',
        undefined,
        'test',
      );
      let reason = '';
      await waitUntil(async () => {
        const { rows } = await t.dbs.api.query<{ reason: string }>(
          `SELECT fields->>'reason' AS reason FROM freshet.logs WHERE msg = 'rollback waits for a lock'`,
        );
        reason = rows[0]?.reason ?? '';
        return reason !== '';
      }, 'the rollback logs that it waits for a lock');
      assert.match(reason, new RegExp(`^rollback waits for a lock on .*pid ${reader.pid}`));
      // Probes keep answering while the reader holds the table and the rollback retries.
      const before = probing.record().done;
      await waitUntil(() => probing.record().done > before + 10, 'ten more probes answer');
      await reader.release();
      released = true;
      const result = await rollback;
      assert.equal(`freshet run ${result.runId}`, kept.rows[0]?.c);
    } finally {
      if (!released) await reader.release();
      const probes = await probing.stop();
      assert.deepEqual(probes.failures, []);
    }
  });
});

describe('the media lock a rollback holds', { timeout: 60_000 }, () => {
  let t: TestEnv;

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: mediaFile('alias') });
  });

  after(async () => {
    await t?.close();
  });

  it('refuses a refresh and a second rollback while held; both go ahead after', async () => {
    const deps = { api: t.dbs.api, es: t.es, media: t.media, config: t.config, queues: t.queues };
    await t.store.withMediaLock(t.queues.prefix, 'clip', 'production', async () => {
      await assert.rejects(
        startRefresh(deps, { media: 'clip' }),
        (err: Error) =>
          err instanceof ConflictError &&
          /^a rollback of clip \(production\) is in progress; start the refresh once it is done$/.test(
            err.message,
          ),
      );
      await assert.rejects(
        rollbackMedia(deps, 'clip', undefined, 'test'),
        (err: Error) =>
          err instanceof ConflictError &&
          /^another rollback of clip \(production\) is in progress/.test(err.message),
      );
      // Another profile is another lock.
      await assert.rejects(
        rollbackMedia(deps, 'clip', 'staging', 'test'),
        /^ConflictError: nothing to roll back to for clip \(staging\)/,
      );
    });
    const { rows } = await t.dbs.api.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM freshet.runs',
    );
    assert.equal(rows[0]?.n, 0, 'no run was recorded while the lock was held');
    const runId = await startRefresh(deps, { media: 'clip' });
    assert.equal((await t.store.getRun(runId)).status, 'queued');
    await assert.rejects(
      rollbackMedia(deps, 'clip', undefined, 'test'),
      new RegExp(`run ${runId} of it is queued`),
    );
  });
});

describe('KEEP_PREVIOUS_BUILD=false', { timeout: 180_000 }, () => {
  let t: TestEnv;
  const file = mediaFile('alias');

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: file, KEEP_PREVIOUS_BUILD: 'false' });
  });

  after(async () => {
    await t?.close();
  });

  it('drops the replaced table as before; nothing to roll back to', async () => {
    await seedFaultTable(t.dbs.catalog, 'clip', 200);
    await refresh(t, file, t.media);
    await seedFaultTable(t.dbs.catalog, 'clip', 30, { from: 5000 });
    await refresh(t, file, t.media);
    const { rows } = await t.dbs.api.query<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['clip'],
    );
    await assert.rejects(
      rollbackMedia(
        { api: t.dbs.api, es: t.es, media: t.media, config: t.config, queues: t.queues },
        'clip',
        undefined,
        'test',
      ),
      (err: Error) =>
        err instanceof ConflictError && /^nothing to roll back to for clip/.test(err.message),
    );
    const cli = await runCli(['rollback', 'clip'], t.env);
    assert.equal(cli.code, 3, 'refused: the action does not apply');
    assert.match(cli.stderr, /^freshet: nothing to roll back to for clip \(production\)/);
  });
});
