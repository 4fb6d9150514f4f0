import type { EsClient } from '../elasticsearch.js';
import { jobIds, type StageName } from '../queues.js';
import { abortableDelay } from '../transient.js';
import type { JobContext } from './context.js';

/** The health of a set of indices, as the run's waiting reason shows it. */
export interface IndicesHealth {
  readonly status: string;
  readonly unassignedShards: number;
  readonly delayedUnassignedShards: number;
  readonly initializingShards: number;
  readonly relocatingShards: number;
  readonly activeShards: number;
  readonly nodes: number;
}

/**
 * How long one health request waits on the server for green (ms): Elasticsearch answers the
 * moment the indices turn green, so a longer poll costs nothing, and between polls the waiting
 * reason is brought up to date with the shard numbers.
 */
const GREEN_POLL_MS = 10_000;

/** The indices stayed below green for longer than the stage may wait; retrying can help. */
export class GreenWaitError extends Error {
  override readonly name = 'GreenWaitError';
  constructor(
    message: string,
    readonly health: IndicesHealth,
  ) {
    super(message);
  }
}

export function describeHealth(h: IndicesHealth): string {
  // Elasticsearch counts delayed shards over the whole cluster, not per index.
  const delayed =
    h.delayedUnassignedShards > 0
      ? `; ${h.delayedUnassignedShards} shard copies in the cluster wait for a node that left (index.unassigned.node_left.delayed_timeout)`
      : '';
  return `${h.status}: ${h.unassignedShards} unassigned shards, ${h.initializingShards} initializing, ${h.relocatingShards} relocating, ${h.activeShards} active, ${h.nodes} nodes${delayed}`;
}

/**
 * Cluster health of `indices`, waiting on the server up to `waitMs` for them to be green (a
 * 408 answer, the wait timing out, is an answer like any other).
 */
export async function indicesHealth(
  es: EsClient,
  indices: readonly string[],
  waitMs: number,
  signal?: AbortSignal,
): Promise<IndicesHealth> {
  const h = await es.cluster.health(
    {
      index: indices.join(','),
      wait_for_status: 'green',
      timeout: `${Math.max(1, Math.round(waitMs / 1000))}s`,
    },
    { ignore: [408], requestTimeout: waitMs + 15_000, ...(signal ? { signal } : {}) },
  );
  return {
    status: String(h.status),
    unassignedShards: h.unassigned_shards,
    delayedUnassignedShards: h.delayed_unassigned_shards,
    initializingShards: h.initializing_shards,
    relocatingShards: h.relocating_shards,
    activeShards: h.active_shards,
    nodes: h.number_of_nodes,
  };
}

export interface GreenWaitOptions {
  /** The stage that waits (named in the waiting reason and the run's log). */
  readonly stage: Extract<StageName, 'finalize' | 'promote'>;
  /** Give up after this long (ms) with a {@link GreenWaitError}; absent: the attempt's deadline. */
  readonly boundMs?: number;
}

/**
 * Waits until every one of `indices` is green (all primaries and replicas assigned): with 0
 * replicas that is every primary started, so one rule serves every cluster. While they are not,
 * the run's waiting reason says so with the shard numbers (and the run's log notes the start and
 * the end of the wait). Not a busy loop: each request waits on the server, which answers as
 * soon as the indices turn green. A cancel or the attempt's deadline aborts the wait at once;
 * past `boundMs` it throws a {@link GreenWaitError} (the attempt fails; the run is blocked, not
 * failed, and can be retried once the cluster has its nodes back).
 */
export async function waitForGreen(
  ctx: JobContext,
  runId: string,
  indices: readonly string[],
  options: GreenWaitOptions,
): Promise<IndicesHealth> {
  const started = Date.now();
  const bound = options.boundMs ?? Number.POSITIVE_INFINITY;
  const jobId = jobIds.stage(runId, options.stage);
  const what = options.stage === 'promote' ? 'promotion' : 'finalize';
  let waiting: string | null = null;
  try {
    for (;;) {
      ctx.scope.check();
      const left = bound - (Date.now() - started);
      const asked = Date.now();
      // The first answer comes at once, so a wait is shown as soon as it starts.
      const pollMs = waiting === null ? 1000 : Math.max(1000, Math.min(GREEN_POLL_MS, left));
      const health = await indicesHealth(ctx.es, indices, pollMs, ctx.scope.signal);
      if (health.status === 'green') {
        if (waiting !== null) {
          await ctx.store.setWaiting(runId, null);
          await ctx.store.log(runId, jobId, 'info', `${what}: the new indices are green`, {
            indices,
            waitedMs: Date.now() - started,
          });
        }
        return health;
      }
      const waited = Date.now() - started;
      if (waited >= bound) {
        throw new GreenWaitError(
          `the new indices ${indices.join(', ')} are not green after ${waited} ms (${describeHealth(health)}): copies of their shards are not placed yet (ELASTICSEARCH_REPLICAS=${ctx.config.ELASTICSEARCH_REPLICAS} replicas each, every one on a node other than its primary's: a node is missing, or copying takes longer than GREEN_WAIT_MS=${ctx.config.GREEN_WAIT_MS}). Bring the missing nodes back, lower ELASTICSEARCH_REPLICAS or raise GREEN_WAIT_MS, then retry the run (freshet retry ${runId})`,
          health,
        );
      }
      const reason = `${what} waits for ${indices.join(', ')} to be green (${describeHealth(health)})`;
      if (waiting === null) {
        await ctx.store.log(runId, jobId, 'warn', `${what} waits for green`, { reason });
      }
      if (reason !== waiting) await ctx.store.setWaiting(runId, reason);
      waiting = reason;
      // A server that answered at once (not by its wait timing out) is not asked again at once.
      if (Date.now() - asked < 1000) await abortableDelay(1000, ctx.scope.signal);
    }
  } catch (err) {
    // The attempt ends (failed, cancelled or past its deadline): the run no longer waits here.
    if (waiting !== null) {
      await ctx.store.setWaiting(runId, null).catch((e: unknown) => {
        ctx.logger.warn({ err: e, runId }, 'could not clear the waiting reason');
      });
    }
    throw err;
  }
}
