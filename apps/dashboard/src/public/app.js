// @ts-check
// The Freshet run view: renders the runs list (/) and one run (/runs/<id>) from the REST API,
// polling about once a second while a run is active. Plain JavaScript with JSDoc types, checked
// by `npx tsc -p apps/dashboard/src/public`; no framework and no build step.
/* global document, window, location, fetch, setTimeout, clearTimeout */

/**
 * @typedef {{ role: 'operator' | 'viewer', canOperate: boolean, media: string[], profiles: string[], prefix: string }} Session
 * @typedef {{ total: number, indexed: number, failed: number }} ChunkCounts
 * @typedef {{ id: string, media: string, profile: string, status: string, stage: string | null,
 *   chunk_count: number | null, error: string | null, requested_by: string | null,
 *   created_at: string, started_at: string | null, finished_at: string | null, updated_at: string,
 *   plan: Record<string, unknown> | null, counts: Record<string, unknown> | null,
 *   waiting_reason: string | null, waiting_since: string | null, active: boolean }} Run
 * @typedef {Run & { chunks: ChunkCounts }} RunSummary
 * @typedef {{ stage: string, status: string, started_at: string | null, finished_at: string | null,
 *   ms: number | string | null, error: string | null }} Stage
 * @typedef {{ total: number, copied: number, cleaned: number, indexed: number, failed: number,
 *   running: { copy: number, clean: number, index: number }, rowsCopied: number, rowsIndexed: number,
 *   grid: string[], gridTruncated: boolean }} Chunks
 * @typedef {{ rowsPerSecond: number | null, chunksPerSecond: number | null, etaSeconds: number | null,
 *   basis: string, windowSeconds: number | null }} Pace
 * @typedef {{ reason: string, count: number, sample: string[] }} ReasonCount
 * @typedef {{ source: string, before: number | null, after: number | null, change: number | null }} SourceCount
 * @typedef {{ step: string, chunk: number | null, status: string, start: number, end: number | null }} Bar
 * @typedef {{ id: number, job_id: string, step: string, chunk: number | null, attempt: number,
 *   worker: string, status: string, started_at: string, finished_at: string | null, ms: number | null,
 *   rows: number | null, error: string | null }} Attempt
 * @typedef {{ id: number, job_id: string | null, level: string, msg: string, fields: unknown, at: string }} LogLine
 * @typedef {{ id: number, actor: string, action: string, detail: unknown, at: string }} AuditLine
 * @typedef {{ live: number, shadow: number, change: number }} SourceComparison
 * @typedef {{ id: string, fields: Record<string, { live: unknown, shadow: unknown }> }} DocumentDiff
 * @typedef {{ field: string, liveNullRate: number, shadowNullRate: number }} FieldShift
 * @typedef {{ totals: SourceComparison, sources: Record<string, SourceComparison>,
 *   filtered?: SourceComparison, sampled: number,
 *   diffs: DocumentDiff[], diffRate: number, shiftedFields: FieldShift[], withinThresholds: boolean,
 *   reasons: string[] }} Comparison
 * @typedef {{ totals: SourceComparison, sources: Record<string, SourceComparison>,
 *   limits: { maxDrop: number, maxSourceDrop: number, sourceMinRows: number }, drops: string[],
 *   outcome: 'within-limits' | 'held' | 'approved-ahead' | 'first-promotion' | 'staging-exempt' }} Shrink
 * @typedef {{ run: Run, now: string, stages: Stage[], chunks: Chunks, pace: Pace,
 *   sources: SourceCount[], rejected: ReasonCount[], skipped: ReasonCount[], changed: ReasonCount[],
 *   tagsDropped: ReasonCount[], comparison: Comparison | null,
 *   shrink?: Shrink | null,
 *   timeline: { origin: string | null, bars: Bar[], truncated: boolean },
 *   attempts: Attempt[], logs: LogLine[], audit: AuditLine[] }} RunDetails
 * @typedef {{ media: string, profile: string, shadow: boolean, stages: string[],
 *   chunks: { count: number, chunkSizeRows: number, rowCap: number | null, upstreamRows: number,
 *     plannedRows: number, ranges: string[] },
 *   tables: { live: string, temp: string }, filtered: 'alias' | 'index',
 *   indices: { main: string, filtered: string | null },
 *   aliases: { alias: string, from: string[], to: string, filter?: unknown }[],
 *   shrinkGuard?: { applies: boolean, reason: string } }} Plan
 * @typedef {{ slotUtc: string, fireUtc: string, fireLocal: string }} UpcomingFire
 * @typedef {{ slotTime: string, fireAt: string, outcome: string, runId: string | null,
 *   reason: string | null, decidedAt: string | null }} LastSlot
 * @typedef {{ id: string, media: string, profile: string, cron: string, timezone: string,
 *   jitter: string, offsetMs: number, overlap: string, conflictsWith: string[], enabled: boolean,
 *   next: UpcomingFire[], lastSlot: LastSlot | null }} Schedule
 * @typedef {{ file: string, now: string, schedules: Schedule[], problems: string[] }} SchedulesView
 * @typedef {{ id: number, action: 'promote' | 'rollback', run_id: string,
 *   replaced_run_id: string | null, actor: string, at: string }} PromotionLine
 * @typedef {{ media: string, profile: string, table: string, previousTable: string,
 *   liveRun: string | null, keptRun: string | null, servingRun: string | null,
 *   rollbackRefusal: string | null, history: PromotionLine[] }} Builds
 * @typedef {string | number | Node | null | undefined | false} Child
 */

const activeStatuses = new Set(['queued', 'running', 'blocked', 'paused', 'awaiting-approval']);
const fastPollMs = 1000;
const slowPollMs = 10000;
/** How often the home page reloads the schedule table (next fire times move slowly). */
const schedulesPollMs = 30000;
const svgNs = 'http://www.w3.org/2000/svg';
/** A chunk's steps: one pass reads, cleans, writes and indexes its rows. */
const stepNames = /** @type {const} */ (['index']);
const stepStatusNames = /** @type {Record<string, string>} */ ({
  p: 'pending',
  r: 'running',
  d: 'done',
  f: 'failed',
  s: 'skipped',
});

// ---------------------------------------------------------------------------------------------
// DOM helpers

/**
 * Creates an HTML element. Attributes whose value is null, undefined or false are left out;
 * `on<event>` attributes given a function become listeners. Text is always set as text.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/**
 * Creates an SVG element.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {SVGElement}
 */
function s(tag, attrs = {}, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(svgNs, tag));
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Record<string, unknown>} attrs
 */
function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else {
      el.setAttribute(key, value === true ? '' : attrText(value));
    }
  }
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function attrText(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

/**
 * @param {Element} el
 * @param {(Child | Child[])[]} children
 */
function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
}

/**
 * Replaces the children of `el`.
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

// ---------------------------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat('en');

/**
 * @param {number | string | null | undefined} n
 * @returns {string}
 */
function num(n) {
  if (n === null || n === undefined || n === '') return '–';
  return numberFormat.format(Number(n));
}

/**
 * A duration in ms as "850 ms", "12.3 s", "4 m 05 s" or "2 h 03 m".
 * @param {number | string | null | undefined} ms
 * @returns {string}
 */
function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  const v = Number(ms);
  if (!Number.isFinite(v) || v < 0) return '–';
  if (v < 1000) return `${Math.round(v)} ms`;
  const sec = v / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m} m ${String(Math.floor(sec % 60)).padStart(2, '0')} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/**
 * A timestamp as local time (with the date when it is not today).
 * @param {string | null | undefined} iso
 * @returns {string}
 */
function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return d.toLocaleString('en-GB', {
    ...(sameDay ? {} : { year: 'numeric', month: 'short', day: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/**
 * A `<time>` element with the full timestamp as its machine-readable value and tooltip.
 * @param {string | null | undefined} iso
 */
function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: iso, title: new Date(iso).toString() }, time(iso));
}

/**
 * Milliseconds between two timestamps (to `now` when `to` is missing).
 * @param {string | null | undefined} from
 * @param {string | null | undefined} to
 * @param {string} now
 */
function span(from, to, now) {
  if (!from) return null;
  return Date.parse(to ?? now) - Date.parse(from);
}

/**
 * A timestamp as hours and minutes ("12:03"), with the date when it is not today.
 * @param {string} iso
 */
function clock(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return d.toLocaleString('en-GB', {
    ...(sameDay ? {} : { month: 'short', day: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
  });
}

/**
 * A fraction as a signed percentage: +12.5%, −33.3%, 0%.
 * @param {number} fraction
 */
function signedPercent(fraction) {
  if (!Number.isFinite(fraction)) return '–';
  const pct = fraction * 100;
  if (Math.abs(pct) < 0.05) return '0%';
  return `${pct > 0 ? '+' : '−'}${Math.abs(pct).toFixed(1)}%`;
}

/**
 * A fraction as a percentage: 12.5%.
 * @param {number} fraction
 */
function percent(fraction) {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)}%` : '–';
}

/**
 * Why an active run's work waits (no headroom: Elasticsearch red or short of disk, PostgreSQL
 * short of connections) and since when, or null when it does not wait.
 * @param {Run} run
 * @param {string} [cls]
 */
function waitingNote(run, cls = 'waiting') {
  if (!run.active || !run.waiting_reason) return null;
  return h(
    'p',
    { class: cls, 'data-testid': 'waiting' },
    h('strong', {}, 'waiting: '),
    run.waiting_reason,
    run.waiting_since
      ? [
          ' · since ',
          h(
            'time',
            { datetime: run.waiting_since, title: new Date(run.waiting_since).toString() },
            clock(run.waiting_since),
          ),
        ]
      : null,
  );
}

/**
 * A JSON value shown in a cell, shortened past `max` characters.
 * @param {unknown} value
 * @param {number} [max]
 */
function jsonCell(value, max = 160) {
  if (value === undefined) return h('span', { class: 'muted' }, '(absent)');
  // JSON.stringify gives undefined only for functions and symbols, which JSON never holds.
  const text = JSON.stringify(value) ?? '';
  return h(
    'code',
    { class: 'small', title: text.length > max ? text : null },
    text.length > max ? `${text.slice(0, max)}…` : text,
  );
}

/**
 * @param {string} status
 */
function badge(status) {
  return h(
    'span',
    { class: `badge st-${status.replace(/\s+/g, '-')}`, 'data-status': status },
    status,
  );
}

/**
 * A progress bar with its numbers.
 * @param {string} label
 * @param {number} done
 * @param {number} total
 * @param {string} [cls]
 */
function progress(label, done, total, cls = '') {
  const pct = total > 0 ? Math.min(100, (done / total) * 100) : 0;
  const bar = h('div', { class: `bar-fill ${cls}` });
  bar.style.width = `${pct}%`;
  return h(
    'div',
    { class: 'progress' },
    h('span', { class: 'progress-label' }, label),
    h(
      'div',
      {
        class: 'bar',
        role: 'progressbar',
        'aria-label': label,
        'aria-valuemin': 0,
        'aria-valuemax': total,
        'aria-valuenow': done,
      },
      bar,
    ),
    h('span', { class: 'progress-num' }, `${num(done)} / ${num(total)}`),
  );
}

/**
 * A table. Each column is [heading, cell renderer, optional class].
 * @template T
 * @param {string} caption
 * @param {[string, (row: T) => Child | Child[], string?][]} columns
 * @param {T[]} rows
 * @param {string} [empty]
 */
function table(caption, columns, rows, empty = 'Nothing yet.') {
  if (rows.length === 0) return h('p', { class: 'muted empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'sr-only' }, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map(([title, , cls]) => h('th', { scope: 'col', class: cls }, title)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            {},
            columns.map(([, render, cls]) => h('td', { class: cls }, render(row))),
          ),
        ),
      ),
    ),
  );
}

/**
 * A titled panel.
 * @param {string} title
 * @param {string} id
 * @param {...(Child | Child[])} children
 */
function panel(title, id, ...children) {
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    h('div', { id }, ...children),
  );
}

/**
 * A titled panel whose body scrolls past a fixed height (long tables).
 * @param {string} title
 * @param {string} id
 */
function scrollPanel(title, id) {
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    h('div', {
      id,
      class: 'scroll',
      tabindex: 0,
      role: 'region',
      'aria-labelledby': `${id}-title`,
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// API

/**
 * Calls the REST API; throws an Error carrying the API's `{ error }` message.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<unknown>}
 */
async function api(path, init = {}) {
  const res = await fetch(`/api${path}`, {
    ...init,
    headers: {
      Accept: 'application/json',
      // The dashboard's CSRF rule: a POST is JSON or carries this header.
      'X-Requested-With': 'freshet',
      ...(init.body ? { 'Content-Type': 'application/json' } : {}),
    },
    credentials: 'same-origin',
  });
  const body = parseJson(await res.text());
  if (!res.ok) {
    const error =
      typeof body === 'object' && body !== null
        ? /** @type {{ error?: unknown }} */ (body).error
        : undefined;
    const message = typeof error === 'string' ? error : `HTTP ${res.status}`;
    throw Object.assign(new Error(message), { status: res.status });
  }
  return body;
}

/**
 * @param {string} text
 * @returns {unknown}
 */
function parseJson(text) {
  try {
    return text ? /** @type {unknown} */ (JSON.parse(text)) : null;
  } catch {
    return null;
  }
}

/**
 * Shows an error (or clears it with null).
 * @param {string | null} message
 */
function flash(message) {
  const el = byId('flash');
  el.hidden = message === null;
  fill(el, message ?? '');
}

// ---------------------------------------------------------------------------------------------
// Polling

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
/** @type {(() => Promise<number>) | undefined} */
let poller;
let generation = 0;

/**
 * Runs `tick` now and again after the delay it returns; a new call replaces the previous loop.
 * Stops while the tab is hidden and starts again when it shows.
 * @param {() => Promise<number>} tick resolves to the delay before the next call (ms)
 */
function poll(tick) {
  poller = tick;
  const gen = ++generation;
  clearTimeout(timer);
  timer = undefined;
  const run = async () => {
    timer = undefined;
    let delay = slowPollMs;
    try {
      delay = await tick();
    } catch (err) {
      flash(`Could not refresh: ${/** @type {Error} */ (err).message}`);
    }
    if (gen === generation && !document.hidden) timer = setTimeout(() => void run(), delay);
  };
  void run();
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && poller && timer === undefined) poll(poller);
});

// ---------------------------------------------------------------------------------------------
// Runs list

/**
 * @param {Session} session
 * @param {HTMLElement} main
 */
function renderRunsPage(session, main) {
  document.title = 'Runs · Freshet';
  const list = h('div', { id: 'runs' }, h('p', { class: 'muted' }, 'Loading runs…'));
  fill(
    main,
    h(
      'div',
      { class: 'page-head' },
      h('h1', {}, 'Refresh runs'),
      h('p', { class: 'muted' }, `Queue prefix ${session.prefix}`),
    ),
    session.canOperate ? startForm(session) : null,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'runs-title' },
      h('h2', { id: 'runs-title' }, 'Recent runs'),
      list,
    ),
    panel('Live builds', 'builds', h('p', { class: 'muted' }, 'Loading builds…')),
    panel('Schedules', 'schedules', h('p', { class: 'muted' }, 'Loading schedules…')),
  );
  let schedulesAt = 0;
  poll(async () => {
    const { runs } = /** @type {{ runs: RunSummary[] }} */ (await api('/runs?limit=100'));
    flash(null);
    fill(list, runsTable(runs));
    const { builds } = /** @type {{ builds: Builds[] }} */ (await api('/builds'));
    fill(byId('builds'), buildsTable(builds, session.canOperate));
    if (Date.now() - schedulesAt >= schedulesPollMs) {
      const view = /** @type {SchedulesView} */ (await api('/schedules'));
      schedulesAt = Date.now();
      fill(byId('schedules'), schedulesTable(view));
    }
    return runs.some((r) => r.active) ? fastPollMs : slowPollMs;
  });
}

/**
 * A time in a time zone, like "Mon 1 Dec, 00:17".
 * @param {string} iso
 * @param {string} timeZone
 */
function zoned(iso, timeZone) {
  return new Date(iso).toLocaleString('en-GB', {
    timeZone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/**
 * The schedule table: each entry with its next fire times (in its own time zone; UTC in the
 * tooltip) and what became of its latest slot.
 * @param {SchedulesView} view
 */
function schedulesTable(view) {
  const now = Date.parse(view.now);
  if (view.problems.length) {
    return h(
      'div',
      { class: 'run-error', 'data-testid': 'schedule-problems' },
      h('strong', {}, `The schedules file ${view.file} cannot be used; nothing is scheduled:`),
      h(
        'ul',
        { class: 'reasons' },
        view.problems.map((p) => h('li', {}, p)),
      ),
    );
  }
  return [
    table(
      'Schedules',
      [
        [
          'Schedule',
          (x) => [
            h('strong', { class: 'mono' }, x.id),
            x.enabled ? null : ' ',
            x.enabled ? null : h('span', { class: 'badge st-disabled' }, 'disabled'),
          ],
        ],
        ['Media', (x) => x.media],
        ['Profile', (x) => x.profile],
        ['Cron', (x) => h('code', {}, x.cron)],
        ['Time zone', (x) => x.timezone],
        [
          'Jitter',
          (x) => [
            x.jitter,
            x.offsetMs
              ? h('span', { class: 'muted small' }, ` (starts +${duration(x.offsetMs)})`)
              : null,
          ],
        ],
        ['Overlap', (x) => x.overlap],
        [
          'Next fire times',
          (x) =>
            x.next.length
              ? h(
                  'ul',
                  { class: 'fires' },
                  x.next.map((n) =>
                    h(
                      'li',
                      {},
                      h(
                        'time',
                        { datetime: n.fireUtc, title: `${n.fireUtc} (slot ${n.slotUtc})` },
                        zoned(n.fireUtc, x.timezone),
                      ),
                      h(
                        'span',
                        { class: 'muted small' },
                        ` in ${duration(Date.parse(n.fireUtc) - now)}`,
                      ),
                    ),
                  ),
                )
              : h('span', { class: 'muted' }, 'never (disabled)'),
          'wide',
        ],
        ['Last slot', (x) => lastSlotCell(x.lastSlot)],
      ],
      view.schedules,
      'No schedule is configured.',
    ),
    h('p', { class: 'hint' }, `From ${view.file}; the scheduler (freshet schedule) starts them.`),
  ];
}

/**
 * What became of a schedule's latest slot: its outcome, when it fired, and the run it started
 * or why it did not.
 * @param {LastSlot | null} slot
 */
function lastSlotCell(slot) {
  if (!slot) return h('span', { class: 'muted' }, 'none yet');
  return h(
    'div',
    { 'data-testid': 'last-slot' },
    badge(slot.outcome),
    ' ',
    timeEl(slot.fireAt),
    slot.runId && slot.outcome !== 'missed'
      ? h(
          'div',
          { class: 'small' },
          h('a', { href: `/runs/${encodeURIComponent(slot.runId)}`, class: 'mono' }, slot.runId),
        )
      : null,
    slot.reason ? h('div', { class: 'muted small' }, slot.reason) : null,
  );
}

/**
 * The start form (operator only): media type, profile, shadow build; "Start refresh" starts
 * it, "Dry run" shows what it would do without changing anything.
 * @param {Session} session
 */
function startForm(session) {
  const media = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: 'start-media', name: 'media', required: true },
      session.media.map((m) => h('option', { value: m }, m)),
    )
  );
  const profile = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: 'start-profile', name: 'profile' },
      session.profiles.map((p) => h('option', { value: p }, p)),
    )
  );
  const shadow = /** @type {HTMLInputElement} */ (
    h('input', { type: 'checkbox', id: 'start-shadow', name: 'shadow' })
  );
  const allowShrink = /** @type {HTMLInputElement} */ (
    h('input', { type: 'checkbox', id: 'start-allow-shrink', name: 'allowShrink' })
  );
  const button = /** @type {HTMLButtonElement} */ (
    h('button', { type: 'submit', class: 'primary' }, 'Start refresh')
  );
  const planOut = h('div', { id: 'plan', class: 'plan', 'aria-live': 'polite', hidden: true });
  const request = () => ({
    media: media.value,
    profile: profile.value,
    ...(shadow.checked ? { shadow: true } : {}),
    ...(allowShrink.checked ? { allowShrink: true } : {}),
  });
  const dryRun = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          dryRun.disabled = true;
          try {
            const plan = /** @type {Plan} */ (
              await api('/runs', {
                method: 'POST',
                body: JSON.stringify({ ...request(), dryRun: true }),
              })
            );
            flash(null);
            planOut.hidden = false;
            fill(planOut, planView(plan));
          } catch (err) {
            flash(`Could not plan: ${/** @type {Error} */ (err).message}`);
          } finally {
            dryRun.disabled = false;
          }
        },
      },
      'Dry run',
    )
  );
  const form = h(
    'form',
    {
      class: 'panel start-form',
      'aria-labelledby': 'start-title',
      /** @param {SubmitEvent} e */
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        try {
          const { runId } = /** @type {{ runId: string }} */ (
            await api('/runs', { method: 'POST', body: JSON.stringify(request()) })
          );
          location.assign(`/runs/${encodeURIComponent(runId)}`);
        } catch (err) {
          flash(`Could not start: ${/** @type {Error} */ (err).message}`);
          button.disabled = false;
        }
      },
    },
    h('h2', { id: 'start-title' }, 'Start a refresh'),
    h(
      'div',
      { class: 'form-row' },
      h('label', { for: 'start-media' }, 'Media type', media),
      h('label', { for: 'start-profile' }, 'Profile', profile),
      h('label', { for: 'start-shadow', class: 'check' }, shadow, 'Shadow build'),
      h('label', { for: 'start-allow-shrink', class: 'check' }, allowShrink, 'Allow shrink'),
      button,
      dryRun,
    ),
    h(
      'p',
      { class: 'hint' },
      'Staging builds prefixed tables and indices and never touches production aliases. ',
      'A shadow build is compared with the live data before promotion and waits for approval ',
      'beyond the thresholds. A production build that lost more rows than the shrink guard allows ',
      'waits for approval too, unless Allow shrink approves it ahead of time. A dry run only reads.',
    ),
    planOut,
  );
  return form;
}

/**
 * What a refresh would do (the answer to a dry run).
 * @param {Plan} plan
 */
function planView(plan) {
  const c = plan.chunks;
  /** @type {[string, Child | Child[]][]} */
  const rows = [
    ['Stages', plan.stages.join(' → ')],
    [
      'Chunks',
      [
        `${num(c.count)} of about ${num(c.chunkSizeRows)} rows, over ${num(c.plannedRows)} of ${num(c.upstreamRows)} upstream rows`,
        c.rowCap === null ? '' : ` (row cap ${num(c.rowCap)})`,
        c.ranges.length ? h('pre', { class: 'mono small ranges' }, c.ranges.join('\n')) : null,
      ],
    ],
    ['Tables', `build ${plan.tables.temp}, swap into ${plan.tables.live}`],
    [
      'Indices',
      plan.indices.filtered === null
        ? `${plan.indices.main} (the filtered view is an alias over it)`
        : `${plan.indices.main}, ${plan.indices.filtered}`,
    ],
    [
      'Aliases',
      plan.aliases.map((a) =>
        h(
          'div',
          {},
          h('span', { class: 'mono' }, a.alias),
          `: ${a.from.length ? a.from.join(', ') : '(none)'} → ${a.to}`,
          a.filter === undefined
            ? null
            : h('span', { class: 'mono' }, ` filter ${JSON.stringify(a.filter)}`),
          plan.shadow || plan.shrinkGuard?.applies
            ? h('span', { class: 'muted' }, ' (after approval if held)')
            : null,
        ),
      ),
    ],
    ...(plan.shrinkGuard
      ? /** @type {[string, Child][]} */ ([['Shrink guard', plan.shrinkGuard.reason]])
      : []),
  ];
  return [
    h(
      'h3',
      { 'data-testid': 'plan-title' },
      `Dry run: ${plan.profile} refresh of ${plan.media}${plan.shadow ? ' (shadow)' : ''} — nothing was changed`,
    ),
    h(
      'dl',
      { class: 'plan-list' },
      rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
    ),
  ];
}

/**
 * @param {RunSummary[]} runs
 */
function runsTable(runs) {
  return table(
    'Recent runs',
    [
      ['Run', (r) => h('a', { href: `/runs/${encodeURIComponent(r.id)}`, class: 'mono' }, r.id)],
      ['Media', (r) => r.media],
      ['Profile', (r) => r.profile],
      ['Status', (r) => [badge(r.status), waitingNote(r, 'waiting-inline small')]],
      ['Stage', (r) => r.stage ?? '–'],
      [
        'Chunks indexed',
        (r) =>
          r.chunks.total > 0
            ? progress(
                `Chunks indexed for ${r.id}`,
                r.chunks.indexed,
                r.chunks.total,
                r.chunks.failed ? 'has-failed' : '',
              )
            : h('span', { class: 'muted' }, 'not planned yet'),
        'wide',
      ],
      ['Started', (r) => timeEl(r.started_at ?? r.created_at)],
      [
        'Duration',
        (r) => duration(span(r.started_at, r.finished_at, new Date().toISOString())),
        'num',
      ],
      ['By', (r) => r.requested_by ?? '–'],
    ],
    runs,
    'No runs yet. Start one above, or with `freshet refresh <media>`.',
  );
}

/**
 * A run id linking to its page, or a dash.
 * @param {string | null} id
 * @param {string} [testId]
 */
function runLink(id, testId) {
  return id === null
    ? h('span', { class: 'muted' }, '–')
    : h('a', { href: `/runs/${encodeURIComponent(id)}`, class: 'mono', 'data-testid': testId }, id);
}

/**
 * The build each media type serves, the one kept for rollback, the latest promotions and
 * rollbacks, and (for the operator) a Roll back button, confirmed first.
 * @param {Builds[]} builds
 * @param {boolean} canOperate
 */
function buildsTable(builds, canOperate) {
  /** @type {[string, (b: Builds) => Child | Child[], string?][]} */
  const columns = [
    ['Media', (b) => b.media],
    ['Profile', (b) => b.profile],
    [
      'Serving',
      (b) => [
        runLink(b.servingRun, 'serving-run'),
        h('div', { class: 'muted small mono' }, b.table),
      ],
    ],
    [
      'Kept for rollback',
      (b) =>
        b.keptRun === null
          ? h('span', { class: 'muted' }, 'nothing kept')
          : [
              runLink(b.keptRun, 'kept-run'),
              h('div', { class: 'muted small mono' }, b.previousTable),
            ],
    ],
    [
      'History',
      (b) =>
        b.history.length === 0
          ? h('span', { class: 'muted' }, 'none yet')
          : h(
              'ul',
              { class: 'history small' },
              b.history
                .slice(0, 3)
                .map((p) =>
                  h(
                    'li',
                    { 'data-testid': 'build-history' },
                    `${p.action} → `,
                    runLink(p.run_id),
                    ` by ${p.actor} · `,
                    timeEl(p.at),
                  ),
                ),
            ),
    ],
  ];
  if (canOperate) columns.push(['', (b) => rollbackButton(b)]);
  return table('Live builds', columns, builds, 'No media type is promoted yet.');
}

/**
 * @param {Builds} b
 */
function rollbackButton(b) {
  const label = `Roll back ${b.media} (${b.profile})`;
  const button = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'aria-label': label,
        title: b.rollbackRefusal ?? `Serve run ${b.keptRun ?? ''} again`,
        disabled: b.rollbackRefusal !== null,
        onclick: async () => {
          const ok = window.confirm(
            `Roll back ${b.media} (${b.profile})? Run ${b.keptRun ?? ''} serves again (its table and both aliases); run ${b.servingRun ?? ''} is kept, so rolling back again returns to it.`,
          );
          if (!ok) return;
          button.disabled = true;
          try {
            await api(`/media/${encodeURIComponent(b.media)}/rollback`, {
              method: 'POST',
              body: JSON.stringify({ profile: b.profile }),
            });
            flash(null);
          } catch (err) {
            flash(`Rollback failed: ${/** @type {Error} */ (err).message}`);
          }
          if (poller) poll(poller);
        },
      },
      'Roll back',
    )
  );
  return button;
}

// ---------------------------------------------------------------------------------------------
// One run

/**
 * @param {Session} session
 * @param {HTMLElement} main
 * @param {string} runId
 */
function renderRunPage(session, main, runId) {
  document.title = `Run ${runId} · Freshet`;
  const status = h('span', { id: 'run-status-wrap' });
  const meta = h('p', { class: 'muted', id: 'run-meta' });
  const controls = session.canOperate ? runControls(runId) : undefined;
  const errorBox = h('div', { class: 'run-error', role: 'alert', hidden: true });
  const waitingBox = h('div', { class: 'waiting-box', role: 'status' });
  const approval = approvalPanel(runId, session.canOperate);
  const cards = h('div', { class: 'cards', id: 'cards' });
  const steps = h('div', { class: 'steps' });
  fill(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '/' }, '← All runs')),
    h(
      'div',
      { class: 'page-head run-head' },
      h('div', {}, h('h1', {}, 'Run ', h('span', { class: 'mono' }, runId), ' ', status), meta),
      controls
        ? controls.el
        : h('p', { class: 'muted read-only' }, 'Read-only: signed in as viewer.'),
    ),
    errorBox,
    waitingBox,
    approval.el,
    cards,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'progress-title' },
      h('h2', { id: 'progress-title' }, 'Progress'),
      steps,
    ),
    panel('Stages', 'stages'),
    panel('Timeline', 'timeline'),
    panel('Chunks', 'chunks'),
    h(
      'div',
      { class: 'two-col' },
      panel('Rows per source', 'sources'),
      panel('Skipped and rejected rows', 'rejected'),
    ),
    panel('Cleaning', 'cleaning'),
    scrollPanel('Attempts (most recent first)', 'attempts'),
    scrollPanel('Logs', 'logs'),
    scrollPanel('Audit log', 'audit'),
  );
  /** @type {string[]} */
  let previousGrid = [];
  poll(async () => {
    const d = /** @type {RunDetails} */ (await api(`/runs/${encodeURIComponent(runId)}`));
    flash(null);
    const run = d.run;
    fill(
      status,
      h(
        'span',
        { 'data-testid': 'run-status', class: `badge st-${run.status}`, 'data-status': run.status },
        run.status,
      ),
    );
    fill(
      meta,
      `${run.media} · ${run.profile} · requested by ${run.requested_by ?? 'unknown'} · created `,
      timeEl(run.created_at),
      run.finished_at ? ' · finished ' : '',
      run.finished_at ? timeEl(run.finished_at) : '',
    );
    // A held build's error repeats the reasons of its hold, which the approval panel shows.
    const error =
      run.status === 'awaiting-approval' && (d.comparison || d.shrink) ? null : run.error;
    errorBox.hidden = !error;
    fill(errorBox, error ? h('strong', {}, 'Problem: ') : '', error ?? '');
    fill(waitingBox, waitingNote(run));
    approval.update(d);
    controls?.update(run.status);
    renderCards(cards, d);
    fill(
      steps,
      stepNames.map((step) => {
        const done = d.chunks.indexed;
        const running = d.chunks.running[step];
        return h(
          'div',
          { class: 'step-row' },
          progress(
            `${step[0]?.toUpperCase()}${step.slice(1)}`,
            done,
            d.chunks.total,
            `step-${step}`,
          ),
          h('span', { class: 'muted small' }, running ? `${running} running` : ''),
        );
      }),
    );
    fill(byId('stages'), stagesTable(d));
    fill(byId('timeline'), timelineChart(d));
    previousGrid = renderGrid(byId('chunks'), d.chunks, previousGrid);
    fill(byId('sources'), sourcesTable(d.sources, run));
    fill(byId('rejected'), leftOutTables(d));
    fill(
      byId('cleaning'),
      h(
        'div',
        { class: 'two-col inner' },
        h(
          'div',
          {},
          h('h3', {}, 'Rows changed per rule'),
          reasonTable('Rows changed per rule', 'Rule', d.changed),
        ),
        h(
          'div',
          {},
          h('h3', {}, 'Tags dropped per reason'),
          reasonTable('Tags dropped per reason', 'Reason', d.tagsDropped),
        ),
      ),
    );
    fill(byId('attempts'), attemptsTable(d.attempts));
    fill(byId('logs'), logsTable(d.logs));
    fill(byId('audit'), auditTable(d.audit));
    return run.active ? fastPollMs : slowPollMs;
  });
}

/**
 * Rows that were not indexed: rejected (by the copy, the clean, or Elasticsearch refusing their
 * document) and skipped by the copy step, per reason, summed over the chunks so far (the report
 * stores the same sums at the end).
 * @param {RunDetails} d
 */
function leftOutTables(d) {
  /** @param {ReasonCount[]} rows */
  const total = (rows) => rows.reduce((n, r) => n + r.count, 0);
  return [
    h('h3', {}, `Rejected: ${num(total(d.rejected))}`),
    table(
      'Rejected rows per reason',
      [
        ['Reason', (r) => r.reason],
        ['Rows', (r) => num(r.count), 'num'],
        [
          'Sample keys',
          (r) => h('span', { class: 'mono small' }, r.sample.slice(0, 3).join(', ')),
          'sample',
        ],
      ],
      d.rejected,
      'No row rejected so far.',
    ),
    h('h3', {}, `Skipped by the copy step: ${num(total(d.skipped))}`),
    table(
      'Skipped upstream rows per reason',
      [
        ['Reason', (r) => r.reason],
        ['Rows', (r) => num(r.count), 'num'],
      ],
      d.skipped,
      'No row skipped so far.',
    ),
  ];
}

/**
 * The shrink guard's comparison and a shadow build's comparison with the live data and, while
 * the run is held for approval, the Approve and Discard buttons (operator only, each after a
 * confirmation). Hidden for runs with neither comparison.
 * @param {string} runId
 * @param {boolean} canOperate
 */
function approvalPanel(runId, canOperate) {
  const title = h('h2', { id: 'approval-title' });
  const summary = h('div', { class: 'approval-summary' });
  const body = h('div', { id: 'approval' });
  /** @type {Record<string, { label: string, confirm: string, cls: string }>} */
  const actions = {
    approve: {
      label: 'Approve and promote',
      confirm: 'Approve this build? It is promoted: the live table and aliases switch to it.',
      cls: 'primary',
    },
    discard: {
      label: 'Discard build',
      confirm:
        'Discard this build? Its table and indices are removed and the run is cancelled; the live data stays as it is.',
      cls: 'danger',
    },
  };
  /** @type {HTMLButtonElement[]} */
  const buttons = [];
  const buttonsEl = h('div', {
    class: 'controls approval-actions',
    role: 'group',
    'aria-label': 'Approval',
  });
  if (canOperate) {
    for (const [action, spec] of Object.entries(actions)) {
      const button = /** @type {HTMLButtonElement} */ (
        h(
          'button',
          {
            type: 'button',
            class: spec.cls,
            'data-action': action,
            onclick: async () => {
              if (!window.confirm(spec.confirm)) return;
              for (const b of buttons) b.disabled = true;
              try {
                await api(`/runs/${encodeURIComponent(runId)}/${action}`, { method: 'POST' });
                flash(null);
              } catch (err) {
                flash(`${spec.label} failed: ${/** @type {Error} */ (err).message}`);
                for (const b of buttons) b.disabled = false;
              }
              if (poller) poll(poller);
            },
          },
          spec.label,
        )
      );
      buttons.push(button);
      buttonsEl.append(button);
    }
  }
  const el = h(
    'section',
    { class: 'panel approval', 'aria-labelledby': 'approval-title', hidden: true },
    h('div', { class: 'approval-head' }, title, buttonsEl),
    summary,
    body,
  );
  let shown = '';
  /** @param {RunDetails} d */
  function update(d) {
    const c = d.comparison;
    const shrink = d.shrink ?? null;
    const held = d.run.status === 'awaiting-approval';
    el.hidden = c === null && shrink === null && !held;
    el.classList.toggle('held', held);
    buttonsEl.hidden = !held || !canOperate;
    for (const b of buttons) b.disabled = !held;
    const key = `${d.run.status}|${JSON.stringify(c)}|${JSON.stringify(shrink)}`;
    if (key === shown) return;
    shown = key;
    const shrank = shrink?.outcome === 'held';
    fill(title, held ? 'Awaiting approval' : c ? 'Shadow comparison' : 'Shrink guard');
    fill(
      summary,
      held
        ? h(
            'p',
            { 'data-testid': 'approval-state' },
            h('strong', {}, 'This build is held: '),
            [
              shrank
                ? 'it has fewer rows than the live build beyond the shrink guard’s limits'
                : '',
              shrank && c && !c.withinThresholds ? ', and ' : '',
              c && !c.withinThresholds ? 'it differs from the live data beyond the thresholds' : '',
            ].join(''),
            '. The live table and aliases are unchanged until ',
            canOperate
              ? 'you approve it (promote) or discard it.'
              : 'an operator approves or discards it.',
          )
        : h(
            'p',
            { class: 'muted', 'data-testid': 'approval-state' },
            c
              ? c.withinThresholds
                ? 'Within the thresholds: promotion went on by itself.'
                : 'Beyond the thresholds: it was held for approval (see the audit log for the decision).'
              : shrink
                ? shrinkOutcomeText[shrink.outcome]
                : '',
          ),
    );
    fill(
      body,
      // A shadow build's comparison lists the same rows per source: one table is enough.
      shrink ? shrinkView(shrink, c === null) : null,
      c ? comparisonView(c) : shrink ? null : h('p', { class: 'muted' }, 'No comparison recorded.'),
    );
  }
  return { el, update };
}

/** What the shrink guard decided, in words. */
const shrinkOutcomeText = /** @type {Record<Shrink['outcome'], string>} */ ({
  'within-limits': 'Within the shrink guard’s limits: promotion went on by itself.',
  held: 'It shrank beyond the shrink guard’s limits: it was held for approval (see the audit log for the decision).',
  'approved-ahead':
    'It shrank beyond the shrink guard’s limits and was promoted: the refresh was approved ahead of time (allow shrink).',
  'first-promotion': 'A first promotion: nothing was live, so the shrink guard never holds it.',
  'staging-exempt': 'A staging build: the shrink guard never holds it.',
});

/**
 * The shrink guard's comparison: the drops beyond its limits, and rows per source, live vs the
 * new build, the largest drops first (`withTable`).
 * @param {Shrink} c
 * @param {boolean} withTable
 */
function shrinkView(c, withTable) {
  return [
    ...(c.drops.length
      ? [
          h(
            'h3',
            {},
            c.outcome === 'held'
              ? 'Why it is held (shrink guard)'
              : 'Drops beyond the shrink guard’s limits',
          ),
          h(
            'ul',
            { class: 'reasons', 'data-testid': 'shrink-drops' },
            c.drops.map((r) => h('li', {}, r)),
          ),
        ]
      : []),
    ...(withTable ? shrinkTable(c) : []),
  ];
}

/**
 * @param {Shrink} c
 */
function shrinkTable(c) {
  const sources = Object.entries(c.sources)
    .map(([source, x]) => ({ source, ...x }))
    .sort((a, b) => b.live - b.shadow - (a.live - a.shadow) || b.live - a.live);
  const l = c.limits;
  return [
    h(
      'h3',
      {},
      `Shrink guard: rows per source, live vs new build (limits: ${percent(l.maxDrop)} in all, ${percent(l.maxSourceDrop)} of a source with at least ${num(l.sourceMinRows)} rows)`,
    ),
    rowsPerSource('Rows per source, live and new build', 'New build', [
      { source: '', ...c.totals },
      ...sources,
    ]),
  ];
}

/**
 * Rows per source of the live and a new build (`source` '' is the total; `filteredView` marks
 * the filtered view's row), with the change.
 * @param {string} caption
 * @param {string} newLabel
 * @param {(SourceComparison & { source: string, filteredView?: boolean })[]} rows
 */
function rowsPerSource(caption, newLabel, rows) {
  return table(
    caption,
    [
      [
        'Source',
        (x) =>
          x.filteredView
            ? h('em', {}, 'without sensitive terms (filtered view)')
            : x.source === ''
              ? h('strong', {}, 'total')
              : x.source,
      ],
      ['Live', (x) => num(x.live), 'num'],
      [newLabel, (x) => num(x.shadow), 'num'],
      [
        'Change',
        (x) =>
          h(
            'span',
            { class: x.change > 0 ? 'up' : x.change < 0 ? 'down' : '' },
            `${x.shadow - x.live > 0 ? '+' : ''}${num(x.shadow - x.live)} (${signedPercent(x.change)})`,
          ),
        'num',
      ],
    ],
    rows,
  );
}

/**
 * The comparison report: why it is held, rows per source live vs shadow, sampled documents
 * diffed field by field, and fields whose share of missing values shifted.
 * @param {Comparison} c
 */
function comparisonView(c) {
  const sources = Object.entries(c.sources)
    .map(([source, x]) => ({ source, ...x }))
    .sort((a, b) => Math.abs(b.shadow - b.live) - Math.abs(a.shadow - a.live) || b.live - a.live);
  /** @param {number} change */
  const changeCls = (change) => (change > 0 ? 'up' : change < 0 ? 'down' : '');
  const diffRows = c.diffs.flatMap((doc) =>
    Object.entries(doc.fields).map(([field, v], i) => ({ id: i === 0 ? doc.id : '', field, ...v })),
  );
  return [
    ...(c.reasons.length
      ? [
          h('h3', {}, 'Why it is held'),
          h(
            'ul',
            { class: 'reasons', 'data-testid': 'approval-reasons' },
            c.reasons.map((r) => h('li', {}, r)),
          ),
        ]
      : []),
    h('h3', {}, 'Rows per source, live vs shadow'),
    rowsPerSource('Rows per source, live and shadow build', 'Shadow', [
      { source: '', ...c.totals },
      // Comparisons recorded before the filtered view was compared have no such row.
      ...(c.filtered ? [{ source: '', filteredView: true, ...c.filtered }] : []),
      ...sources,
    ]),
    h(
      'h3',
      {},
      `Sampled documents: ${num(c.diffs.length)} of ${num(c.sampled)} differ (${percent(c.diffRate)})`,
    ),
    table(
      'Sampled documents that differ, field by field',
      [
        ['Document', (x) => h('span', { class: 'mono' }, x.id)],
        ['Field', (x) => h('strong', {}, x.field)],
        ['Live', (x) => jsonCell(x.live), 'diff-value'],
        ['Shadow', (x) => jsonCell(x.shadow), 'diff-value'],
      ],
      diffRows,
      c.sampled ? 'Every sampled document is the same in both builds.' : 'No document sampled.',
    ),
    h('h3', {}, 'Fields whose share of missing values shifted'),
    table(
      'Fields whose share of missing values shifted',
      [
        ['Field', (x) => h('strong', {}, x.field)],
        ['Missing live', (x) => percent(x.liveNullRate), 'num'],
        ['Missing shadow', (x) => percent(x.shadowNullRate), 'num'],
        [
          'Shift',
          (x) =>
            h(
              'span',
              { class: changeCls(x.shadowNullRate - x.liveNullRate) },
              signedPercent(x.shadowNullRate - x.liveNullRate),
            ),
          'num',
        ],
      ],
      c.shiftedFields,
      'None beyond the threshold.',
    ),
  ];
}

/**
 * The run's control buttons; `update` enables those that apply to the status.
 * @param {string} runId
 */
function runControls(runId) {
  /** @type {Record<string, { label: string, when: (status: string) => boolean, confirm?: string, cls?: string }>} */
  const actions = {
    pause: { label: 'Pause', when: (st) => ['queued', 'running', 'blocked'].includes(st) },
    resume: { label: 'Resume', when: (st) => st === 'paused' },
    retry: {
      label: 'Retry failed',
      when: (st) => st === 'blocked' || st === 'failed',
    },
    cancel: {
      label: 'Cancel',
      when: (st) => activeStatuses.has(st),
      confirm: 'Cancel this run? Its running work is stopped and it cannot be resumed.',
      cls: 'danger',
    },
  };
  /** @type {Map<string, HTMLButtonElement>} */
  const buttons = new Map();
  let current = '';
  const el = h('div', { class: 'controls', role: 'group', 'aria-label': 'Run controls' });
  for (const [action, spec] of Object.entries(actions)) {
    const button = /** @type {HTMLButtonElement} */ (
      h(
        'button',
        {
          type: 'button',
          class: spec.cls ?? '',
          'data-action': action,
          disabled: true,
          onclick: async () => {
            if (spec.confirm && !window.confirm(spec.confirm)) return;
            for (const b of buttons.values()) b.disabled = true;
            try {
              const res = /** @type {{ status: string }} */ (
                await api(`/runs/${encodeURIComponent(runId)}/${action}`, { method: 'POST' })
              );
              flash(null);
              if (poller) poll(poller);
              update(res.status);
            } catch (err) {
              flash(`${spec.label} failed: ${/** @type {Error} */ (err).message}`);
              update(current);
            }
          },
        },
        spec.label,
      )
    );
    buttons.set(action, button);
    el.append(button);
  }
  /** @param {string} status */
  function update(status) {
    current = status;
    // Nothing can be done to a run that succeeded or was cancelled.
    el.hidden = status === 'succeeded' || status === 'cancelled';
    for (const [action, button] of buttons) button.disabled = !actions[action]?.when(status);
  }
  return { el, update };
}

/**
 * @param {HTMLElement} el
 * @param {RunDetails} d
 */
function renderCards(el, d) {
  const { run, chunks, pace } = d;
  const elapsed = span(run.started_at, run.finished_at, d.now);
  const upstream = /** @type {{ upstreamRows?: number } | null} */ (run.plan)?.upstreamRows;
  /** @type {[string, Child | Child[], string?, string?][]} */
  const items = [
    ['Stage', run.stage ?? '–'],
    [
      'Chunks indexed',
      [
        h('span', { 'data-testid': 'chunks-indexed' }, String(chunks.indexed)),
        h('span', { class: 'of' }, ` / ${num(chunks.total)}`),
      ],
      chunks.failed ? `${chunks.failed} with a failed step` : undefined,
      chunks.failed ? 'warn' : undefined,
    ],
    ['Rows read', num(chunks.rowsCopied), 'by the chunk passes, from the catalog'],
    [
      'Rows written and indexed',
      num(chunks.rowsIndexed),
      upstream !== undefined ? `of about ${num(upstream)} upstream` : undefined,
    ],
    [
      'Rows / s',
      pace.rowsPerSecond === null ? '–' : num(Math.round(pace.rowsPerSecond)),
      pace.basis === 'recent'
        ? `last ${Math.round(pace.windowSeconds ?? 0)} s`
        : pace.basis === 'whole run'
          ? 'average'
          : undefined,
    ],
    [
      'ETA',
      [
        h(
          'span',
          { 'data-testid': 'eta' },
          pace.etaSeconds === null ? (run.active ? '–' : 'done') : duration(pace.etaSeconds * 1000),
        ),
      ],
      run.active ? 'for the chunks' : undefined,
    ],
    ['Elapsed', duration(elapsed)],
  ];
  fill(
    el,
    items.map(([label, value, note, cls]) =>
      h(
        'div',
        { class: `card ${cls ?? ''}` },
        h('div', { class: 'card-label' }, label),
        h('div', { class: 'card-value' }, value),
        note ? h('div', { class: 'card-note' }, note) : null,
      ),
    ),
  );
}

/**
 * @param {RunDetails} d
 */
function stagesTable(d) {
  return table(
    'Stages',
    [
      ['Stage', (st) => h('strong', {}, st.stage)],
      ['Status', (st) => badge(st.status)],
      ['Started', (st) => timeEl(st.started_at)],
      ['Finished', (st) => timeEl(st.finished_at)],
      ['Duration', (st) => duration(st.ms === null ? null : Number(st.ms)), 'num'],
      ['Error', (st) => (st.error ? h('span', { class: 'error-text' }, st.error) : '')],
    ],
    d.stages,
  );
}

/**
 * Greedy lane packing: each bar goes to the first lane free at its start.
 * @param {{ start: number, end: number }[]} bars sorted by start
 * @param {number} maxLanes
 * @returns {number[]} lane per bar
 */
function packLanes(bars, maxLanes) {
  /** @type {number[]} */
  const laneEnds = [];
  return bars.map((b) => {
    let lane = laneEnds.findIndex((end) => end <= b.start);
    if (lane < 0) {
      lane = laneEnds.length < maxLanes ? laneEnds.length : laneEnds.indexOf(Math.min(...laneEnds));
    }
    laneEnds[lane] = b.end;
    return lane;
  });
}

/**
 * Tick spacing (ms) giving about `target` ticks over `range` ms.
 * @param {number} range
 * @param {number} target
 */
function tickStep(range, target) {
  const steps = [
    1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 144e5, 288e5, 864e5,
  ];
  return steps.find((st) => range / st <= target) ?? 864e5 * Math.ceil(range / 864e5 / target);
}

/**
 * The intervals a run spent paused, from its audit log (pause until the next resume, cancel or
 * now).
 * @param {AuditLine[]} audit newest first
 * @param {string} status
 * @param {number} now
 * @returns {{ start: number, end: number, actor: string }[]}
 */
function pausedSpans(audit, status, now) {
  /** @type {{ start: number, end: number, actor: string }[]} */
  const spans = [];
  /** @type {{ start: number, actor: string } | undefined} */
  let open;
  for (const a of [...audit].reverse()) {
    const at = Date.parse(a.at);
    if (a.action === 'pause' && !open) open = { start: at, actor: a.actor };
    else if ((a.action === 'resume' || a.action === 'cancel') && open) {
      spans.push({ ...open, end: at });
      open = undefined;
    }
  }
  if (open && status === 'paused') spans.push({ ...open, end: now });
  return spans;
}

/**
 * A time-axis label: 0, 15s, 1m, 1m 30s, 2h, 2h 30m.
 * @param {number} ms
 */
function tickLabel(ms) {
  const sec = Math.round(ms / 1000);
  if (sec === 0) return '0';
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return sec % 60 ? `${m}m ${sec % 60}s` : `${m}m`;
  const hr = Math.floor(m / 60);
  return m % 60 ? `${hr}h ${m % 60}m` : `${hr}h`;
}

/**
 * The timeline: one row per stage (from the run store's stage times), then the chunk steps'
 * attempts packed into lanes, so concurrency and slow chunks show at a glance.
 * @param {RunDetails} d
 */
function timelineChart(d) {
  const now = Date.parse(d.now);
  const origin = d.timeline.origin ? Date.parse(d.timeline.origin) : null;
  const stageSpans = d.stages
    .filter((st) => st.started_at)
    .map((st) => ({
      name: st.stage,
      status: st.status,
      start: Date.parse(/** @type {string} */ (st.started_at)),
      end: st.finished_at ? Date.parse(st.finished_at) : now,
    }));
  const chunkBars =
    origin === null
      ? []
      : d.timeline.bars
          .filter((b) => b.chunk !== null)
          .map((b) => ({
            ...b,
            start: origin + b.start,
            end: b.end === null ? now : origin + b.end,
          }))
          .sort((a, b) => a.start - b.start);
  if (stageSpans.length === 0 && chunkBars.length === 0) {
    return h('p', { class: 'muted empty' }, 'Nothing has run yet.');
  }
  const t0 = Math.min(...stageSpans.map((x) => x.start), ...chunkBars.map((x) => x.start));
  const t1 = Math.max(t0 + 1000, ...stageSpans.map((x) => x.end), ...chunkBars.map((x) => x.end));
  const width = 1000;
  const left = 90;
  const right = 10;
  const rowH = 18;
  const laneH = 7;
  const lanes = packLanes(chunkBars, 24);
  const laneCount = chunkBars.length ? Math.max(...lanes) + 1 : 0;
  const stagesTop = 24;
  const chunksTop = stagesTop + stageSpans.length * rowH + 14;
  const height = chunksTop + laneCount * laneH + (laneCount ? 10 : 0);
  /** @param {number} t */
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const step = tickStep(t1 - t0, 8);
  /** @type {SVGElement[]} */
  const ticks = [];
  for (let t = 0; t <= t1 - t0; t += step) {
    ticks.push(
      s('line', { x1: x(t0 + t), x2: x(t0 + t), y1: 16, y2: height, class: 'tick' }),
      s(
        'text',
        { x: x(t0 + t), y: 11, class: 'tick-label', 'text-anchor': 'middle' },
        tickLabel(t),
      ),
    );
  }
  const pauses = pausedSpans(d.audit, d.run.status, now).map((p) =>
    s(
      'rect',
      {
        x: x(Math.max(p.start, t0)),
        y: 16,
        width: Math.max(1, x(Math.min(p.end, t1)) - x(Math.max(p.start, t0))),
        height: height - 16,
        class: 'tl-pause',
      },
      s('title', {}, `paused by ${p.actor} for ${duration(p.end - p.start)}`),
    ),
  );
  const stageRows = stageSpans.map((st, i) => {
    const y = stagesTop + i * rowH;
    return s(
      'g',
      {},
      s('text', { x: left - 6, y: y + 12, class: 'lane-label', 'text-anchor': 'end' }, st.name),
      s(
        'rect',
        {
          x: x(st.start),
          y: y + 2,
          width: Math.max(2, x(st.end) - x(st.start)),
          height: rowH - 5,
          rx: 3,
          class: `tl-stage tl-${st.status}`,
        },
        s('title', {}, `${st.name}: ${st.status}, ${duration(st.end - st.start)}`),
      ),
    );
  });
  const bars = chunkBars.map((b, i) =>
    s(
      'rect',
      {
        x: x(b.start),
        y: chunksTop + (lanes[i] ?? 0) * laneH,
        width: Math.max(1.5, x(b.end) - x(b.start)),
        height: laneH - 2,
        class: `tl-chunk tl-${b.step} tl-${b.status}`,
      },
      s('title', {}, `chunk ${b.chunk} ${b.step}: ${b.status}, ${duration(b.end - b.start)}`),
    ),
  );
  const legend = h(
    'p',
    { class: 'legend small' },
    stepNames.map((st) =>
      h('span', { class: 'legend-item' }, h('span', { class: `swatch tl-${st}` }), `${st} attempt`),
    ),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch tl-failed' }), 'failed attempt'),
    h(
      'span',
      { class: 'legend-item', title: 'its worker died or its job stalled out before it ended' },
      h('span', { class: 'swatch tl-lost' }),
      'lost attempt',
    ),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch tl-pause' }), 'paused'),
    d.timeline.truncated
      ? h('span', { class: 'muted' }, ' (most recent chunk attempts only)')
      : null,
  );
  const chart = s(
    'svg',
    {
      viewBox: `0 0 ${width} ${height}`,
      class: 'timeline',
      role: 'img',
      'aria-label': `Timeline of ${stageSpans.length} stages and ${chunkBars.length} chunk step attempts over ${duration(t1 - t0)}`,
    },
    ticks,
    pauses,
    stageRows,
    laneCount
      ? s(
          'text',
          { x: left - 6, y: chunksTop + 8, class: 'lane-label', 'text-anchor': 'end' },
          'chunks',
        )
      : null,
    bars,
  );
  return [legend, chart];
}

/**
 * Updates the chunk grid in place, touching only chunks whose steps changed.
 * @param {HTMLElement} el
 * @param {Chunks} chunks
 * @param {string[]} previous
 * @returns {string[]}
 */
function renderGrid(el, chunks, previous) {
  let grid = /** @type {HTMLElement | null} */ (el.querySelector('.grid'));
  if (!grid || previous.length !== chunks.grid.length) {
    if (chunks.grid.length === 0) {
      fill(el, h('p', { class: 'muted empty' }, 'Chunks appear once preflight has planned them.'));
      return [];
    }
    grid = h('div', {
      class: `grid ${chunks.grid.length > 800 ? 'dense' : ''}`,
      role: 'img',
      'aria-label': '',
    });
    fill(
      el,
      h(
        'p',
        { class: 'legend small' },
        ['pending', 'running', 'done', 'failed'].map((st) =>
          h('span', { class: 'legend-item' }, h('span', { class: `swatch g-${st[0]}` }), st),
        ),
        h('span', { class: 'muted' }, ' · each chunk shows copy | clean | index'),
      ),
      grid,
      chunks.gridTruncated
        ? h(
            'p',
            { class: 'muted small' },
            `Showing the first ${chunks.grid.length} of ${num(chunks.total)} chunks.`,
          )
        : null,
    );
    previous = [];
  }
  grid.setAttribute(
    'aria-label',
    `${chunks.total} chunks: ${chunks.indexed} done, ${chunks.failed} failed`,
  );
  const cells = grid.children;
  chunks.grid.forEach((code, i) => {
    if (previous[i] === code && cells[i]) return;
    const title = `chunk ${i}: ${stepNames.map((st, j) => `${st} ${stepStatusNames[code[j] ?? 'p'] ?? '?'}`).join(', ')}`;
    const cell = h(
      'span',
      { class: 'cell', title },
      stepNames.map((_, j) => h('span', { class: `g-${code[j] ?? 'p'}` })),
    );
    const old = cells[i];
    if (old) old.replaceWith(cell);
    else grid.append(cell);
  });
  return chunks.grid;
}

/**
 * @param {SourceCount[]} sources
 * @param {Run} run
 */
function sourcesTable(sources, run) {
  const reported = sources.some((x) => x.after !== null);
  return [
    reported
      ? null
      : h(
          'p',
          { class: 'muted small' },
          run.active ? 'Counts after the refresh come with the report stage.' : '',
        ),
    table(
      'Rows per source before and after',
      [
        ['Source', (x) => x.source],
        ['Before', (x) => num(x.before), 'num'],
        ['After', (x) => num(x.after), 'num'],
        [
          'Change',
          (x) =>
            x.change === null
              ? '–'
              : h(
                  'span',
                  { class: x.change > 0 ? 'up' : x.change < 0 ? 'down' : '' },
                  `${x.change > 0 ? '+' : ''}${num(x.change)}`,
                ),
          'num',
        ],
      ],
      sources,
      run.stage === null || run.stage === 'preflight'
        ? 'No counts yet: preflight records them before the refresh, the report after.'
        : 'The API table had no rows before this refresh.',
    ),
  ];
}

/**
 * @param {string} caption
 * @param {string} heading
 * @param {ReasonCount[]} rows
 */
function reasonTable(caption, heading, rows) {
  return table(
    caption,
    [
      [heading, (r) => r.reason],
      ['Count', (r) => num(r.count), 'num'],
    ],
    rows,
    'None.',
  );
}

/**
 * @param {Attempt[]} attempts
 */
function attemptsTable(attempts) {
  return table(
    'Recent attempts',
    [
      ['Job', (a) => h('span', { class: 'mono small' }, a.job_id)],
      ['Step', (a) => a.step],
      ['Chunk', (a) => (a.chunk === null ? '–' : a.chunk), 'num'],
      ['Try', (a) => a.attempt, 'num'],
      ['Status', (a) => badge(a.status)],
      ['Started', (a) => timeEl(a.started_at)],
      ['Took', (a) => duration(a.ms), 'num'],
      ['Rows', (a) => num(a.rows), 'num'],
      ['Worker', (a) => h('span', { class: 'small' }, a.worker)],
      ['Error', (a) => (a.error ? h('span', { class: 'error-text' }, a.error) : '')],
    ],
    attempts,
    'No attempt yet: the run waits for a worker.',
  );
}

/**
 * @param {LogLine[]} logs
 */
function logsTable(logs) {
  return table(
    'Run logs',
    [
      ['Time', (l) => timeEl(l.at)],
      ['Level', (l) => h('span', { class: `level level-${l.level}` }, l.level)],
      ['Job', (l) => h('span', { class: 'mono small' }, l.job_id ?? '')],
      ['Message', (l) => l.msg],
      ['Fields', (l) => (l.fields ? h('code', { class: 'small' }, JSON.stringify(l.fields)) : '')],
    ],
    logs,
    'No log lines for this run.',
  );
}

/**
 * @param {AuditLine[]} audit
 */
function auditTable(audit) {
  return table(
    'Audit log',
    [
      ['Time', (a) => timeEl(a.at)],
      ['Actor', (a) => h('strong', {}, a.actor)],
      ['Action', (a) => a.action],
      ['Detail', (a) => (a.detail ? h('code', { class: 'small' }, JSON.stringify(a.detail)) : '')],
    ],
    audit,
    'Nobody has acted on this run.',
  );
}

// ---------------------------------------------------------------------------------------------
// Start

async function main() {
  const mainEl = byId('main');
  /** @type {Session} */
  let session;
  try {
    session = /** @type {Session} */ (await api('/session'));
  } catch (err) {
    fill(
      mainEl,
      h(
        'p',
        { class: 'error-text' },
        `Cannot load the session: ${/** @type {Error} */ (err).message}`,
      ),
    );
    return;
  }
  fill(byId('session'), 'Signed in as ', h('strong', { 'data-testid': 'role' }, session.role));
  const match = /^\/runs\/([^/]+)\/?$/.exec(location.pathname);
  if (match?.[1]) renderRunPage(session, mainEl, decodeURIComponent(match[1]));
  else renderRunsPage(session, mainEl);
}

void main();
