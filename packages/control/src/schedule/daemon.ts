import { loadMediaCatalog, type Config, type Logger } from '@freshet/core';
import { schedule, type Logger as CronLogger } from 'node-cron';
import { openProducer } from '../producer.js';
import { loadScheduleConfig, type ScheduleConfig } from './config.js';
import { createScheduler, type Scheduler } from './scheduler.js';
import { scheduleTable } from './table.js';

/** Options of {@link startScheduleDaemon}. */
export interface ScheduleDaemonOptions {
  /** The schedules file. Default `FRESHET_SCHEDULES_FILE`. */
  readonly file?: string;
  /** node-cron expression of the tick that checks for due slots. Default every 15 s. */
  readonly tickCron?: string;
}

/** A running scheduler daemon. */
export interface ScheduleDaemon {
  readonly scheduler: Scheduler;
  readonly schedules: ScheduleConfig;
  /** Stops ticking, waits for a tick in progress, closes the connections. */
  close(): Promise<void>;
}

/** Default {@link ScheduleDaemonOptions.tickCron}: every 15 seconds. */
export const defaultTickCron = '*/15 * * * * *';

/**
 * Runs the scheduler as a daemon: validates the schedules file (an invalid one throws before any
 * connection opens), runs a first tick at once (which catches up a slot missed while no
 * producer ran), then ticks on `tickCron` with node-cron until closed.
 */
export async function startScheduleDaemon(
  config: Config,
  logger: Logger,
  options: ScheduleDaemonOptions = {},
): Promise<ScheduleDaemon> {
  const log = logger.child({ app: 'scheduler' });
  const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
  const schedules = loadScheduleConfig(options.file ?? config.FRESHET_SCHEDULES_FILE, media);
  const producer = openProducer(config);
  const scheduler = createScheduler({
    config,
    api: producer.api,
    media,
    queues: producer.queues,
    schedules,
    logger: log,
  });
  try {
    await scheduler.tick(new Date());
  } catch (err) {
    await producer.close();
    throw err;
  }
  for (const row of scheduleTable(schedules, new Date())) {
    log.info(
      {
        schedule: row.id,
        media: row.media,
        cron: row.cron,
        timezone: row.timezone,
        next: row.next,
      },
      row.enabled ? 'schedule loaded' : 'schedule disabled',
    );
  }

  let inFlight: Promise<void> = Promise.resolve();
  const tick = async () => {
    try {
      await scheduler.tick(new Date());
    } catch (err) {
      log.error({ err }, 'scheduler tick failed');
    }
  };
  const cronLog = log.child({ component: 'node-cron' });
  const cronLogger: CronLogger = {
    info: (msg) => cronLog.info(msg),
    warn: (msg) => cronLog.warn(msg),
    error: (msg, err) => cronLog.error({ err: err ?? msg }, String(msg)),
    debug: (msg) => cronLog.debug(String(msg)),
  };
  const task = schedule(
    options.tickCron ?? defaultTickCron,
    () => {
      inFlight = tick();
      return inFlight;
    },
    { name: 'freshet-scheduler-tick', noOverlap: true, logger: cronLogger },
  );
  log.info(
    { instance: scheduler.instance, schedules: schedules.schedules.length },
    'scheduler started',
  );

  return {
    scheduler,
    schedules,
    async close() {
      try {
        await task.destroy();
      } catch (err) {
        log.error({ err }, 'stopping the tick failed');
      }
      await inFlight;
      await producer.close();
      log.info('scheduler stopped');
    },
  };
}
