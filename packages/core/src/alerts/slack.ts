// The Slack-compatible message of an alert (blocks, text, and the machine-readable fields).
import { formatDurationWords } from '../duration.js';
import { maskSecrets } from '../redact.js';
import type { SourceChange } from '../refresh/report.js';
import type { AlertFields, AlertKind, AlertTotals, RunEvent } from './types.js';

/** Slack text objects and the few block types Freshet uses. */
export interface SlackText {
  readonly type: 'mrkdwn' | 'plain_text';
  readonly text: string;
}
export type SlackBlock =
  | { readonly type: 'header'; readonly text: SlackText & { readonly type: 'plain_text' } }
  | { readonly type: 'section'; readonly text: SlackText; readonly fields?: readonly SlackText[] }
  | { readonly type: 'context'; readonly elements: readonly SlackText[] };

/**
 * A Slack-compatible webhook body: `text` (the notification and fallback), `blocks` (mrkdwn
 * sections) and `freshet`, the same facts as structured fields for other receivers.
 */
export interface AlertPayload {
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
  readonly freshet: AlertFields;
}

/** Options of {@link buildAlertPayload}. */
export interface PayloadOptions {
  /** Sources listed by name in the text and blocks of a success (all are in `freshet.sources`); default 10. */
  readonly topSources?: number;
}

const headline: Record<AlertKind, string> = {
  failed: 'failed',
  blocked: 'is blocked',
  stuck: 'is stuck',
  succeeded: 'succeeded',
  'awaiting-approval': 'awaits approval',
};
const icon: Record<AlertKind, string> = {
  failed: ':x:',
  blocked: ':warning:',
  stuck: ':hourglass:',
  succeeded: ':white_check_mark:',
  'awaiting-approval': ':raised_hand:',
};

/** Slack's limit for a section's text is 3000 characters. */
const sectionLimit = 2900;
const errorLimit = 4000;

/** Slack mrkdwn needs &, < and > escaped; backticks would end an inline code span. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
function code(text: string): string {
  return `\`${esc(text).replace(/`/g, "'")}\``;
}
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const num = (n: number) => n.toLocaleString('en-US');
const signed = (n: number) => (n > 0 ? `+${num(n)}` : n < 0 ? `-${num(-n)}` : '±0');

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const sumValues = (o: Readonly<Record<string, number>> | undefined) =>
  o ? Object.values(o).reduce((a, b) => a + b, 0) : 0;

/** Sources ordered by the size of their change (largest first), then by name. */
function bySizeOfChange(sources: Readonly<Record<string, SourceChange>>): [string, SourceChange][] {
  return Object.entries(sources).sort(
    ([a, x], [b, y]) => Math.abs(y.change) - Math.abs(x.change) || a.localeCompare(b),
  );
}

/**
 * Builds the webhook body for a run event. Pure: the same event gives the same payload.
 * A success lists the `topSources` largest changes in its text and all sources in
 * `freshet.sources`; passwords in URLs quoted by errors are masked.
 */
export function buildAlertPayload(event: RunEvent, options: PayloadOptions = {}): AlertPayload {
  const { run, kind } = event;
  const top = options.topSources ?? 10;
  const at = event.at ?? new Date();
  const error = run.error ? cut(maskSecrets(run.error), errorLimit) : null;
  const detail = event.detail ? cut(maskSecrets(event.detail), errorLimit) : null;
  const end = run.finished_at ?? (kind === 'stuck' ? at : null);
  const durationMs = run.started_at && end ? end.getTime() - run.started_at.getTime() : null;
  const stuckForMs =
    kind === 'stuck' && event.lastProgressAt ? at.getTime() - event.lastProgressAt.getTime() : null;
  const sources = kind === 'succeeded' && event.sources ? event.sources : null;
  const totals: AlertTotals | null = sources
    ? {
        before: Object.values(sources).reduce((a, s) => a + s.before, 0),
        after: Object.values(sources).reduce((a, s) => a + s.after, 0),
        change: Object.values(sources).reduce((a, s) => a + s.change, 0),
        sources: Object.keys(sources).length,
      }
    : null;
  const running = kind === 'stuck' && event.running ? event.running : null;
  const approval = kind === 'awaiting-approval' ? (event.approval ?? null) : null;

  const title = `Freshet: ${run.media} (${run.profile}) refresh ${headline[kind]}`;
  const runLine =
    `*Run* ${code(run.id)} · *media* ${code(run.media)} · *profile* ${code(run.profile)}` +
    ` · *status* ${code(run.status)}` +
    (run.stage ? ` · *stage* ${code(run.stage)}` : '');
  const lines: string[] = [];
  const textParts: string[] = [`${title} (run ${run.id}${run.stage ? `, at ${run.stage}` : ''})`];

  if (kind === 'stuck') {
    const since = event.lastProgressAt
      ? `No progress for ${formatDurationWords(stuckForMs ?? 0)} (last at ${event.lastProgressAt.toISOString()}).`
      : 'No progress recorded.';
    lines.push(since);
    textParts.push(since);
    if (run.waiting_reason) {
      const waiting = `Waiting for headroom${run.waiting_since ? ` since ${run.waiting_since.toISOString()}` : ''}: ${maskSecrets(run.waiting_reason)}`;
      lines.push(esc(waiting));
      textParts.push(`${waiting}.`);
    }
    const count = event.runningCount ?? running?.length ?? 0;
    if (running && running.length > 0) {
      const shown = running.map(
        (a) =>
          `• ${code(a.chunk === null ? a.step : `${a.step} chunk ${a.chunk}`)} attempt ${a.attempt} on ${code(a.worker)} since ${a.startedAt.toISOString()}`,
      );
      if (count > running.length) shown.push(`…and ${num(count - running.length)} more`);
      lines.push(`Recorded as running:\n${shown.join('\n')}`);
      textParts.push(`${num(count)} attempt(s) recorded as running.`);
    } else {
      lines.push(
        'No attempt is recorded as running: no worker has taken its next job (are workers up? is the queue paused?).',
      );
      textParts.push('No attempt is running.');
    }
  }
  if (kind === 'succeeded') {
    if (totals && sources) {
      const summary = `${num(totals.before)} → ${num(totals.after)} rows (${signed(totals.change)}) across ${num(totals.sources)} sources`;
      lines.push(`*Rows* ${summary}`);
      textParts.push(`${summary}.`);
      const ordered = bySizeOfChange(sources);
      const shown = ordered
        .slice(0, top)
        .map(
          ([name, s]) => `• ${code(name)} ${num(s.before)} → ${num(s.after)} (${signed(s.change)})`,
        );
      if (ordered.length > top) shown.push(`…and ${num(ordered.length - top)} more sources`);
      if (shown.length > 0) lines.push(`*Largest changes*\n${shown.join('\n')}`);
      if (ordered.length > 0) {
        textParts.push(
          `Largest changes: ${ordered
            .slice(0, top)
            .map(([name, s]) => `${name} ${signed(s.change)}`)
            .join(', ')}${ordered.length > top ? `, and ${ordered.length - top} more` : ''}.`,
        );
      }
    } else {
      lines.push('No per-source counts were recorded.');
    }
    const skipped = sumValues(event.skipped);
    const rejected = sumValues(event.rejected);
    if (event.skipped || event.rejected) {
      lines.push(`Skipped ${num(skipped)} rows, rejected ${num(rejected)}.`);
    }
  }
  if (approval) {
    const held = approval.reasons.map((r) => `• ${esc(r)}`);
    lines.push(
      `*Held for approval* (the live table and aliases are unchanged)\n${held.join('\n')}`,
    );
    textParts.push(`Held for approval: ${approval.reasons.join('; ')}.`);
    const t = approval.totals;
    lines.push(`*Rows* ${num(t.live)} live → ${num(t.shadow)} new (${signed(t.shadow - t.live)})`);
    const drops = Object.entries(approval.sources)
      .filter(([, c]) => c.shadow < c.live)
      .sort(([a, x], [b, y]) => y.live - y.shadow - (x.live - x.shadow) || a.localeCompare(b));
    const shown = drops
      .slice(0, top)
      .map(
        ([name, c]) =>
          `• ${code(name)} ${num(c.live)} → ${num(c.shadow)} (${signed(c.shadow - c.live)})`,
      );
    if (drops.length > top) shown.push(`…and ${num(drops.length - top)} more sources`);
    if (shown.length > 0) lines.push(`*Largest drops*\n${shown.join('\n')}`);
    const fix = `Approve (promote) or discard: freshet approve ${run.id} / freshet discard ${run.id}, or the run view.`;
    lines.push(esc(fix));
    textParts.push(fix);
  }
  if (durationMs !== null && kind !== 'stuck')
    lines.push(`Took ${formatDurationWords(durationMs)}.`);
  // A held run's error repeats the hold's reasons, shown above.
  if (error && !approval) {
    lines.push(`*Error*\n\`\`\`${esc(cut(error, sectionLimit - 100))}\`\`\``);
    textParts.push(`Error: ${cut(error, 500)}`);
  }
  if (detail) {
    lines.push(esc(detail));
    textParts.push(detail);
  }

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(`${title}`, 150) } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: cut(`${icon[kind]} ${runLine}`, sectionLimit) },
    },
    ...lines.map((text): SlackBlock => ({
      type: 'section',
      text: { type: 'mrkdwn', text: cut(text, sectionLimit) },
    })),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `queue prefix ${code(run.prefix)} · ${at.toISOString()}${event.url ? ` · <${event.url}|open run>` : ''}`,
        },
      ],
    },
  ];

  return {
    // Slack reads `text` as mrkdwn too.
    text: cut(esc(textParts.join(' ')), 3000),
    blocks,
    freshet: {
      version: 1,
      kind,
      runId: run.id,
      prefix: run.prefix,
      media: run.media,
      profile: run.profile,
      status: run.status,
      stage: run.stage,
      error,
      detail,
      waitingReason: run.waiting_reason ? maskSecrets(run.waiting_reason) : null,
      waitingSince: iso(run.waiting_since),
      requestedBy: run.requested_by,
      createdAt: run.created_at.toISOString(),
      startedAt: iso(run.started_at),
      finishedAt: iso(run.finished_at),
      durationMs,
      lastProgressAt: kind === 'stuck' ? iso(event.lastProgressAt) : null,
      stuckForMs,
      running: running
        ? running.map((a) => ({ ...a, startedAt: a.startedAt.toISOString() }))
        : null,
      runningCount: kind === 'stuck' ? (event.runningCount ?? running?.length ?? 0) : null,
      sources,
      totals,
      skipped: kind === 'succeeded' ? (event.skipped ?? null) : null,
      rejected: kind === 'succeeded' ? (event.rejected ?? null) : null,
      approval,
      url: event.url ?? null,
      at: at.toISOString(),
    },
  };
}
