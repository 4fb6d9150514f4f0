import type { Client } from '@elastic/elasticsearch';
import type pg from 'pg';
import type { Config } from './config.js';
import { probeOptions } from './elasticsearch.js';

/** The outcome of a headroom check: admitted, or the reason the work must wait. */
export type Admission = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Checks headroom before heavy work starts: the Elasticsearch cluster is not red and its nodes
 * have free disk, and each database has free connections. Results are cached for
 * ADMISSION_CACHE_MS so a busy worker does not ask for every chunk.
 */
export class AdmissionControl {
  private cached: { at: number; result: Admission } | undefined;

  constructor(
    private readonly config: Config,
    private readonly es: Client,
    private readonly databases: readonly { name: string; pool: pg.Pool }[],
  ) {}

  async check(now = Date.now()): Promise<Admission> {
    if (this.cached && now - this.cached.at < this.config.ADMISSION_CACHE_MS)
      return this.cached.result;
    const result = await this.evaluate();
    this.cached = { at: now, result };
    return result;
  }

  private async evaluate(): Promise<Admission> {
    try {
      const health = await this.es.cluster.health({}, probeOptions(this.es));
      if (health.status === 'red') {
        return {
          ok: false,
          reason: `Elasticsearch cluster health is red (${health.unassigned_primary_shards ?? '?'} unassigned primary shards)`,
        };
      }
      const stats = await this.es.nodes.stats({ metric: 'fs' }, probeOptions(this.es));
      for (const [id, node] of Object.entries(stats.nodes)) {
        const free = node.fs?.total?.available_in_bytes;
        if (typeof free === 'number' && free < this.config.ADMISSION_ES_MIN_FREE_DISK_BYTES) {
          return {
            ok: false,
            reason: `Elasticsearch node ${node.name ?? id} has ${free} bytes of disk free (needs ${this.config.ADMISSION_ES_MIN_FREE_DISK_BYTES})`,
          };
        }
      }
    } catch (err) {
      return { ok: false, reason: `Elasticsearch does not answer: ${(err as Error).message}` };
    }
    for (const { name, pool } of this.databases) {
      try {
        const { rows } = await pool.query<{ free: number }>(
          `SELECT current_setting('max_connections')::int
                  - (SELECT count(*) FROM pg_stat_activity)::int
                  - current_setting('superuser_reserved_connections')::int AS free`,
        );
        const free = Number(rows[0]?.free ?? 0);
        if (free < this.config.ADMISSION_PG_MIN_FREE_CONNECTIONS) {
          return {
            ok: false,
            reason: `PostgreSQL (${name}) has ${free} free connections (needs ${this.config.ADMISSION_PG_MIN_FREE_CONNECTIONS})`,
          };
        }
      } catch (err) {
        return {
          ok: false,
          reason: `PostgreSQL (${name}) does not answer: ${(err as Error).message}`,
        };
      }
    }
    return { ok: true };
  }
}
