import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import {
  checkServices,
  closeOnSignal,
  createEsClient,
  createLogger,
  createPool,
  formatLiveViews,
  liveViews,
  loadConfig,
  loadMediaCatalog,
  repoRoot,
  UserError,
  type Config,
  type RunRow,
} from '@freshet/core';
import { startWorker } from '@freshet/worker';
import { startDashboard } from '@freshet/dashboard';
import { positiveInt } from './options.js';
import {
  withProducer,
  formatPlan,
  planRefresh,
  retryRun,
  startRefresh,
  rollbackMedia,
  type RollbackResult,
  loadScheduleConfig,
  startScheduleDaemon,
  formatSlotHistory,
  slotHistory,
  formatScheduleTable,
  scheduleTable,
} from '@freshet/control';
import { openRunWatch, waitForRun } from './progress.js';
import { cliActor, registerRunCommands } from './commands/runs.js';
import { registerSeed } from './commands/seed.js';
import {
  defaultMaxWorkers,
  nonNegativeInt,
  startSupervisor,
  workersDefaults,
  type WorkersOptions,
} from './supervisor/index.js';

interface RefreshOptions {
  profile: string;
  chunkSize?: number;
  wait?: boolean;
  dryRun?: boolean;
  shadow?: boolean;
  allowShrink?: boolean;
}

/**
 * Follows a run to its end through connections of its own, each call bounded, that outlive
 * PostgreSQL and Redis restarts; exits 0 only if the run succeeded (a blocked, failed or held
 * run exits 1 with its reason, a held one with how to approve or discard it).
 */
async function followRun(config: Config, runId: string): Promise<void> {
  const watch = openRunWatch(config);
  let run: RunRow;
  try {
    run = await waitForRun(watch, runId);
  } finally {
    await watch.close();
  }
  if (run.status === 'awaiting-approval') {
    throw new UserError(
      `run ${runId} is awaiting approval (${run.error ?? 'held'}); the live build keeps serving: promote it with freshet approve ${runId} --wait, or drop it with freshet discard ${runId}`,
      1,
    );
  }
  if (run.status !== 'succeeded') {
    throw new UserError(`run ${runId} ended ${run.status}${run.error ? `: ${run.error}` : ''}`, 1);
  }
  process.stdout.write(`run ${runId} succeeded\n`);
}

/** One line saying what a rollback did. */
export function formatRollback(r: RollbackResult): string {
  const how = r.kind === 'aliases' ? ' (an interrupted rollback finished: aliases moved)' : '';
  return `rolled back ${r.media} (${r.profile}): run ${r.runId} serves again (table ${r.table}, indices ${r.indices.join(', ')}); run ${r.replacedRunId} is kept, \`freshet rollback ${r.media}${r.profile === 'production' ? '' : ` --profile ${r.profile}`}\` goes back to it${how}`;
}

/** Builds the `freshet` command tree; nothing runs until `parseAsync`. */
export function buildCli(): Command {
  const program = new Command('freshet')
    .description('Freshet: refresh an API database and search index from an upstream catalog')
    .showHelpAfterError()
    .exitOverride((err: CommanderError) => {
      // help and version are not failures; usage errors exit 2 with commander's message.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
        throw Object.assign(new Error(''), { exitCode: 0, silent: true });
      }
      throw new UserError(err.message.replace(/^error: /, ''), 2);
    });

  program
    .command('services')
    .description('make sure Redis, PostgreSQL (catalog + API databases) and Elasticsearch are up')
    .argument('[action]', 'up | redis | postgres | elasticsearch | stop-elasticsearch', 'up')
    .action((action: string) => {
      const result = spawnSync('bash', [path.join(repoRoot, 'scripts/services.sh'), action], {
        stdio: 'inherit',
      });
      if (result.status !== 0) throw new UserError('services are not all up', result.status ?? 1);
    });

  program
    .command('check')
    .description(
      'validate the configuration and media definitions, check that every service answers, and show where each media type is served',
    )
    .action(async () => {
      const config = loadConfig();
      const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
      await checkServices(config);
      const es = createEsClient(config);
      const lines: string[] = [];
      try {
        for (const def of media.values()) {
          lines.push(
            formatLiveViews(
              await liveViews(es, def, 'production', config.ELASTICSEARCH_INDEX_PREFIX),
            ),
          );
        }
      } finally {
        await es.close();
      }
      process.stdout.write(
        `configuration valid; redis, catalog, api and elasticsearch answer\n${lines.map((l) => `${l}\n`).join('')}`,
      );
    });

  registerSeed(program, () => loadConfig());

  program
    .command('refresh')
    .description('refresh one media type: copy, clean, index, verify, promote')
    .argument('<media>', 'media type (image, audio, ...)')
    .option('--profile <profile>', 'production | staging', 'production')
    .option(
      '--chunk-size <rows>',
      'rows per chunk (default: CHUNK_SIZE_ROWS or the media definition)',
      positiveInt('--chunk-size'),
    )
    .option('--wait', 'follow the run with a progress bar; exit 0 only if it succeeds')
    .option('--dry-run', 'print the plan (stages, chunks, indices, aliases); change nothing')
    .option(
      '--shadow',
      'build beside the live table and index; promote within thresholds or on approval',
    )
    .option(
      '--allow-shrink',
      'approve ahead of time a build that shrank beyond PROMOTE_MAX_DROP / PROMOTE_MAX_SOURCE_DROP (promote at once; the comparison is still recorded)',
    )
    .action(async (media: string, opts: RefreshOptions) => {
      const config = loadConfig();
      let runId: string | undefined;
      await withProducer(config, async (producer) => {
        const request = {
          media,
          profile: opts.profile,
          ...(opts.chunkSize ? { chunkSizeRows: opts.chunkSize } : {}),
          ...(opts.shadow ? { shadow: true } : {}),
          ...(opts.allowShrink ? { allowShrink: true } : {}),
          requestedBy: cliActor(),
        };
        if (opts.dryRun) {
          process.stdout.write(formatPlan(await planRefresh(producer, request)));
          return;
        }
        runId = await startRefresh(producer, request);
        process.stdout.write(`run ${runId} started (${media}, ${opts.profile})\n`);
      });
      // The producer's connections are closed first: the wait has its own, which reconnect.
      if (opts.wait && runId) await followRun(config, runId);
    });

  program
    .command('retry')
    .description("retry a blocked run's failed jobs; completed chunks are not redone")
    .argument('<runId>')
    .option('--wait', 'follow the run until it ends')
    .action(async (runId: string, opts: { wait?: boolean }) => {
      const config = loadConfig();
      await withProducer(config, async (producer) => {
        const jobs = await retryRun(producer, runId, cliActor());
        process.stdout.write(`retried ${jobs.length} job(s): ${jobs.join(', ')}\n`);
      });
      if (opts.wait) await followRun(config, runId);
    });

  program
    .command('rollback')
    .description(
      'put the previous build of a media type back (its table and both aliases); a second rollback goes back',
    )
    .argument('<media>', 'media type (image, audio, ...)')
    .option('--profile <profile>', 'production | staging', 'production')
    .action(async (media: string, opts: { profile: string }) => {
      const config = loadConfig();
      // Only PostgreSQL and Elasticsearch: a rollback needs no Redis.
      const api = createPool(config.API_DATABASE_URL, 'freshet-cli', 2);
      const es = createEsClient(config);
      try {
        const deps = {
          api,
          es,
          config,
          media: loadMediaCatalog(config.FRESHET_MEDIA_FILE),
          queues: { prefix: config.FRESHET_QUEUE_PREFIX },
        };
        process.stdout.write(
          `${formatRollback(await rollbackMedia(deps, media, opts.profile, cliActor()))}\n`,
        );
      } finally {
        await Promise.allSettled([api.end(), es.close()]);
      }
    });

  registerRunCommands(program, () => loadConfig(), followRun);

  program
    .command('schedule')
    .description(
      'run the scheduler: start refreshes on the cron schedules of FRESHET_SCHEDULES_FILE until SIGTERM',
    )
    .option('--file <path>', 'schedules file (default: FRESHET_SCHEDULES_FILE)')
    .action(async (opts: { file?: string }) => {
      const config = loadConfig();
      const logger = createLogger(config);
      const app = await startScheduleDaemon(config, logger, opts.file ? { file: opts.file } : {});
      closeOnSignal(app, logger, config.SHUTDOWN_TIMEOUT_MS);
    });

  program
    .command('schedules')
    .description('list the schedules with their next fire times (jitter included), local and UTC')
    .option('--file <path>', 'schedules file (default: FRESHET_SCHEDULES_FILE)')
    .option('--count <n>', 'fire times per schedule', positiveInt('--count'), 3)
    .option(
      '--history <n>',
      'also list the latest n slots and what became of them',
      positiveInt('--history'),
    )
    .option('--json', 'print JSON')
    .action(async (opts: { file?: string; count: number; history?: number; json?: boolean }) => {
      const config = loadConfig();
      const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
      const schedules = loadScheduleConfig(opts.file ?? config.FRESHET_SCHEDULES_FILE, media);
      const table = scheduleTable(schedules, new Date(), opts.count);
      const history = opts.history ? await slotHistory(config, opts.history) : undefined;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ schedules: table, history }, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatScheduleTable(table));
      if (history) process.stdout.write(`\nlatest slots:\n${formatSlotHistory(history)}`);
    });

  program
    .command('worker')
    .description('run a worker: processes stage and chunk jobs until SIGTERM')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(config);
      const app = await startWorker(config, logger);
      closeOnSignal(app, logger, config.SHUTDOWN_TIMEOUT_MS);
    });

  program
    .command('workers')
    .description(
      'run `freshet worker` processes on this machine, scaled on the queue depth, until SIGTERM',
    )
    .option(
      '--min <n>',
      'fewest workers, also while idle (0 stops all)',
      nonNegativeInt('--min'),
      0,
    )
    .option('--max <n>', 'most workers (default: one per CPU)', positiveInt('--max'))
    .option(
      '--per-worker <jobs>',
      'queued or running jobs per worker (default: WORKER_CONCURRENCY)',
      positiveInt('--per-worker'),
    )
    .option(
      '--interval-ms <ms>',
      'time between two samples of the queue depth',
      positiveInt('--interval-ms'),
      workersDefaults.intervalMs,
    )
    .option(
      '--idle-ms <ms>',
      'how long the depth must stay low before workers are stopped',
      nonNegativeInt('--idle-ms'),
      workersDefaults.idleMs,
    )
    .action(async (opts: Omit<WorkersOptions, 'max'> & { max?: number }) => {
      const max = opts.max ?? Math.max(opts.min, defaultMaxWorkers());
      if (opts.min > max) {
        throw new UserError(`--min (${opts.min}) must not exceed --max (${max})`, 2);
      }
      const config = loadConfig();
      const logger = createLogger(config);
      const app = await startSupervisor(config, logger, { ...opts, max });
      // A second signal exits at once: the workers must not outlive the supervisor.
      process.once('exit', () => app.killAll());
      closeOnSignal(app, logger, app.closeTimeoutMs);
    });

  program
    .command('dashboard')
    .description(
      'serve the dashboard (run view, REST API, Bull Board, /metrics) on DASHBOARD_PORT until SIGTERM',
    )
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(config);
      const app = await startDashboard(config, logger);
      closeOnSignal(app, logger, config.SHUTDOWN_TIMEOUT_MS);
    });
  return program;
}
