import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import {
  activeStatuses,
  ensureRunStore,
  formatDuration,
  type Config,
  type RunStatus,
} from '@freshet/core';
import {
  approveRun,
  cancelRun,
  discardRun,
  pauseRun,
  resumeRun,
  withProducer,
  RunView,
  type RunDetails,
  type RunSummary,
} from '@freshet/control';
import { positiveInt } from '../options.js';

export const runStatuses: readonly RunStatus[] = [
  ...activeStatuses,
  'succeeded',
  'failed',
  'cancelled',
];

/**
 * Who acts from a terminal: the operating-system user, as the audit log records it (the
 * dashboard records its role instead).
 */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    // A uid with no entry in the user database (e.g. a container's arbitrary uid).
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

function runStatus(value: string): RunStatus {
  if (!(runStatuses as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--status must be one of ${runStatuses.join(', ')}`);
  }
  return value as RunStatus;
}

const count = new Intl.NumberFormat('en-US');
const n = (v: number | string | null | undefined) =>
  v === null || v === undefined ? '-' : count.format(Number(v));
const ms = (v: number | string | null) => (v === null ? '' : formatDuration(Number(v)));
const at = (d: Date | null) => (d === null ? '' : new Date(d).toISOString().replace('.000Z', 'Z'));

/** One line per run, as `freshet runs` prints them. */
export function formatRunLine(r: RunSummary): string {
  const chunks =
    r.chunks.total === 0
      ? ''
      : ` ${r.chunks.indexed}/${r.chunks.total} chunks${r.chunks.failed > 0 ? ` (${r.chunks.failed} failed)` : ''}`;
  return `${r.id}  ${r.media.padEnd(8)} ${r.profile.padEnd(10)} ${r.status.padEnd(17)} ${(r.stage ?? '').padEnd(9)}${chunks}${r.error ? `  ${r.error}` : ''}`;
}

/** A run as `freshet show` prints it: what the run view shows, as text. */
export function formatRunDetails(d: RunDetails): string {
  const { run, chunks } = d;
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  line(
    `run ${run.id}: ${run.media} (${run.profile}) ${run.status}${run.stage ? `, stage ${run.stage}` : ''}`,
  );
  if (run.error) line(`  reason: ${run.error}`);
  if (run.waiting_reason) line(`  waiting: ${run.waiting_reason}`);
  line(
    `  created ${at(run.created_at)}${run.started_at ? `, started ${at(run.started_at)}` : ''}${run.finished_at ? `, finished ${at(run.finished_at)}` : ''}`,
  );
  line();
  line('stages');
  for (const s of d.stages) {
    line(
      `  ${s.stage.padEnd(10)} ${s.status.padEnd(8)} ${ms(s.ms).padEnd(8)}${s.error ? ` ${s.error}` : ''}`,
    );
  }
  line();
  line(
    `chunks: ${n(chunks.total)} planned, ${n(chunks.indexed)} done, ${n(chunks.running.index)} running, ${n(chunks.failed)} failed; rows read ${n(chunks.rowsCopied)}, indexed ${n(chunks.rowsIndexed)}`,
  );
  if (d.sources.length > 0) {
    line();
    line('rows per source (before -> after)');
    for (const s of d.sources) {
      const change =
        s.change === null ? '' : ` (${s.change >= 0 ? '+' : ''}${(s.change * 100).toFixed(1)}%)`;
      line(`  ${s.source.padEnd(20)} ${n(s.before).padStart(12)} -> ${n(s.after)}${change}`);
    }
  }
  const reasons = (title: string, list: RunDetails['rejected']) => {
    if (list.length === 0) return;
    line();
    line(title);
    for (const r of list) {
      line(
        `  ${r.reason.padEnd(28)} ${n(r.count).padStart(10)}${r.sample.length > 0 ? `  e.g. ${r.sample.slice(0, 3).join(', ')}` : ''}`,
      );
    }
  };
  reasons('rejected rows, by reason', d.rejected);
  reasons('skipped rows, by reason', d.skipped);
  if (d.comparison) {
    const c = d.comparison;
    line();
    line(
      `comparison with the live build: ${n(c.totals.live)} -> ${n(c.totals.shadow)} rows; ${c.withinThresholds ? 'within thresholds' : `held: ${c.reasons.join('; ')}`}`,
    );
  }
  const failed = d.attempts.filter((a) => a.status === 'failed' || a.status === 'lost');
  line();
  line(
    `attempts: ${d.attempts.length}${d.attempts.length === 100 ? ' (latest 100)' : ''}, ${failed.length} failed or lost`,
  );
  for (const a of failed.slice(0, 10)) {
    line(
      `  ${a.job_id} attempt ${a.attempt} ${a.status} on ${a.worker}${a.error ? `: ${a.error}` : ''}`,
    );
  }
  const errors = d.logs.filter((l) => l.level === 'error' || l.level === 'warn').slice(0, 10);
  if (errors.length > 0) {
    line();
    line('warnings and errors (latest first)');
    for (const l of errors)
      line(`  ${at(l.at)} ${l.level} ${l.msg}${l.job_id ? ` (${l.job_id})` : ''}`);
  }
  if (d.audit.length > 0) {
    line();
    line('audit (latest first)');
    for (const a of d.audit.slice(0, 10)) line(`  ${at(a.at)} ${a.actor} ${a.action}`);
  }
  return `${out.join('\n')}\n`;
}

const print = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** `freshet runs`, `freshet show` and the run controls: the dashboard's controls, from a terminal. */
export function registerRunCommands(
  program: Command,
  config: () => Config,
  /** Follows a run to its end (`--wait`): exits 0 only if it succeeds. */
  follow: (config: Config, runId: string) => Promise<void>,
): void {
  program
    .command('runs')
    .description('list recent runs, newest first')
    .option('--status <status>', `only runs in this status (${runStatuses.join(', ')})`, runStatus)
    .option('--media <media>', 'only runs of this media type')
    .option('--limit <n>', 'most runs to list', positiveInt('--limit'), 50)
    .option('--json', 'print JSON')
    .action(async (opts: { status?: RunStatus; media?: string; limit: number; json?: boolean }) => {
      await withProducer(config(), async (producer) => {
        await ensureRunStore(producer.api);
        const view = new RunView(producer.api, producer.queues.prefix);
        const runs = await view.list({
          limit: opts.limit,
          ...(opts.media ? { media: opts.media } : {}),
          ...(opts.status ? { status: opts.status } : {}),
        });
        if (opts.json) print(JSON.stringify(runs, null, 2));
        else if (runs.length === 0) print('no runs');
        else print(runs.map(formatRunLine).join('\n'));
      });
    });

  program
    .command('show')
    .description(
      'one run: stages, chunks, rows per source, rejected and skipped rows, attempts, errors',
    )
    .argument('<runId>')
    .option('--json', 'print JSON (what GET /api/runs/:id answers)')
    .action(async (runId: string, opts: { json?: boolean }) => {
      await withProducer(config(), async (producer) => {
        await ensureRunStore(producer.api);
        const details = await new RunView(producer.api, producer.queues.prefix).details(runId);
        print(opts.json ? JSON.stringify(details, null, 2) : formatRunDetails(details));
      });
    });

  const controls = [
    {
      name: 'pause',
      what: 'pause a run: no job of it starts until resumed',
      fn: pauseRun,
      did: 'paused',
      followable: false,
    },
    {
      name: 'resume',
      what: 'resume a paused run where it stopped',
      fn: resumeRun,
      did: 'resumed',
      followable: true,
    },
    {
      name: 'cancel',
      what: 'cancel a run: its running jobs are aborted and its queries cancelled',
      fn: cancelRun,
      did: 'cancelled',
      followable: false,
    },
    {
      name: 'approve',
      what: 'approve a run held for approval (a shadow build beyond its thresholds, a build that shrank): promotion proceeds',
      fn: approveRun,
      did: 'approved',
      followable: true,
    },
    {
      name: 'discard',
      what: 'discard a run held for approval: its table and indices are dropped, the live build keeps serving',
      fn: discardRun,
      did: 'discarded',
      followable: false,
    },
  ] as const;
  for (const c of controls) {
    const command = program.command(c.name).description(c.what).argument('<runId>');
    if (c.followable)
      command.option('--wait', 'follow the run until it ends; exit 0 only if it succeeds');
    command.action(async (runId: string, opts: { wait?: boolean }) => {
      await withProducer(config(), async (producer) => {
        await ensureRunStore(producer.api);
        const view = new RunView(producer.api, producer.queues.prefix);
        await view.run(runId); // a run of another prefix is not found, before anything changes
        await c.fn(producer, runId, cliActor());
        const run = await view.run(runId);
        print(`run ${runId} ${c.did}: now ${run.status}`);
      });
      // The producer's connections are closed first: the wait has its own, which reconnect.
      if (opts.wait) await follow(config(), runId);
    });
  }
}
