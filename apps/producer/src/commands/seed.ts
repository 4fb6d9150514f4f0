import { InvalidArgumentError, type Command } from 'commander';
import {
  checkDatabase,
  createPool,
  defaultSeed,
  getMedia,
  loadMediaCatalog,
  maxSeed,
  seedSample,
  seedSynthetic,
  UnknownMediaError,
  UserError,
  type Config,
  type MediaCatalog,
  type MediaDefinition,
  type SeedReport,
} from '@freshet/core';
import { positiveInt } from '../options.js';

/** Options of `freshet seed`, as commander parses them. */
interface SeedOptions {
  sample?: boolean;
  rows?: number;
  media?: string;
  seed?: number;
  append?: boolean;
}

function seedNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > maxSeed) {
    throw new InvalidArgumentError(
      `--seed must be an integer from 0 to ${maxSeed}, got '${value}'`,
    );
  }
  return n;
}

const numberFormat = new Intl.NumberFormat('en-US');

/** One line such as `image: 1,000 rows (250 removed, 4 deleted) in 0.4 s, 2,500 rows/s`. */
export function formatSeedReport(report: SeedReport): string {
  const seconds = report.ms / 1000;
  const rate = Math.round(report.rows / Math.max(seconds, 0.001));
  return (
    `${report.media}: ${numberFormat.format(report.rows)} rows ` +
    `(${numberFormat.format(report.removed)} removed, ${numberFormat.format(report.deleted)} deleted) ` +
    `in ${seconds.toFixed(1)} s, ${numberFormat.format(rate)} rows/s`
  );
}

function media(catalog: MediaCatalog, name: string): MediaDefinition {
  try {
    return getMedia(catalog, name);
  } catch (err) {
    if (err instanceof UnknownMediaError) throw new UserError(err.message, 2, { cause: err });
    throw err;
  }
}

/** Checks the option combination; returns what to do, before anything connects. */
function plan(
  opts: SeedOptions,
  catalog: MediaCatalog,
):
  | { kind: 'sample'; media: MediaCatalog }
  | { kind: 'rows'; def: MediaDefinition; rows: number; seed: number; append: boolean } {
  if ((opts.sample === true) === (opts.rows !== undefined)) {
    throw new UserError('give exactly one of --sample or --rows N', 2);
  }
  if (opts.sample) {
    if (opts.seed !== undefined || opts.append) {
      throw new UserError('--seed and --append go with --rows N, not with --sample', 2);
    }
    if (opts.media === undefined) return { kind: 'sample', media: catalog };
    const def = media(catalog, opts.media);
    return { kind: 'sample', media: new Map([[def.name, def]]) };
  }
  return {
    kind: 'rows',
    def: media(catalog, opts.media ?? 'image'),
    rows: opts.rows as number,
    seed: opts.seed ?? defaultSeed,
    append: opts.append === true,
  };
}

/** `freshet seed`: load the Openverse sample or generate synthetic rows into the catalog. */
export function registerSeed(program: Command, config: () => Config): void {
  program
    .command('seed')
    .description(
      'load the Openverse sample (--sample) or N generated rows (--rows N) into the upstream catalog',
    )
    .option('--sample', 'load the real Openverse sample rows from FRESHET_SAMPLE_DIR')
    .option('--rows <n>', 'generate N synthetic rows (COPY, streamed)', positiveInt('--rows'))
    .option('--media <name>', 'media type to seed (default for --rows: image; --sample: all)')
    .option('--seed <n>', `seed of the generated rows (default ${defaultSeed})`, seedNumber)
    .option('--append', 'add the generated rows instead of replacing the table')
    .addHelpText(
      'after',
      '\nExamples:\n  freshet seed --sample\n  freshet seed --rows 1000000 --media image --seed 7\n',
    )
    .action(async (opts: SeedOptions) => {
      const cfg = config();
      const todo = plan(opts, loadMediaCatalog(cfg.FRESHET_MEDIA_FILE));
      const pool = createPool(cfg.CATALOG_DATABASE_URL, 'freshet-seed', 2);
      try {
        await checkDatabase(pool, 'CATALOG_DATABASE_URL', cfg.CATALOG_DATABASE_URL);
        if (todo.kind === 'sample') {
          const reports = await seedSample(pool, todo.media, cfg.FRESHET_SAMPLE_DIR);
          for (const report of reports) process.stdout.write(`${formatSeedReport(report)}\n`);
        } else {
          const report = await seedSynthetic(pool, todo.def, {
            rows: todo.rows,
            seed: todo.seed,
            truncate: !todo.append,
          });
          process.stdout.write(`${formatSeedReport(report)}, seed ${todo.seed}\n`);
        }
      } finally {
        await pool.end();
      }
    });
}
