import { readFileSync } from 'node:fs';
import {
  buildIndexBody,
  documentExpression,
  ident,
  parseSensitiveTerms,
  sensitiveExpression,
  type EsClient,
  type MediaDefinition,
} from '@freshet/core';
import Cursor from 'pg-cursor';
import { perSecond, timed } from './measure.js';
import type { World } from './world.js';

/** Pre-serialized bulk request bodies for a main and a filtered index. */
export interface BulkBodies {
  readonly main: string;
  readonly filtered: string;
  readonly bodies: readonly Buffer[];
  /** Rows read (documents in the main index). */
  readonly rows: number;
  /** Bulk operations (main + filtered documents). */
  readonly ops: number;
  readonly bytes: number;
  /** Time to build them from PostgreSQL (not part of the ceiling). */
  readonly buildMs: number;
}

export interface EsCeilingRun {
  readonly concurrency: number;
  readonly rows: number;
  readonly ops: number;
  readonly ms: number;
  /** Rows (main documents) per second; each row is also written to the filtered index when clean. */
  readonly rowsPerSec: number;
  readonly opsPerSec: number;
  readonly mbPerSec: number;
}

interface DocRow {
  id: string;
  doc: string;
  sensitive: boolean;
}

/** Sensitive terms as the worker reads them. */
export function loadSensitiveTerms(world: World): string[] {
  return parseSensitiveTerms(readFileSync(world.config.SENSITIVE_TERMS_FILE, 'utf8'));
}

/**
 * Reads `table` (the copied and cleaned rows) once with Freshet's own document and sensitivity
 * SQL and serializes the same bulk operations Freshet sends (each row to the main index, and the
 * non-sensitive ones to the filtered index too, `_id` = key) into NDJSON bodies of about
 * `flushBytes`, held in memory.
 */
export async function buildBulkBodies(
  world: World,
  table: string,
  flushBytes: number,
): Promise<BulkBodies> {
  const def = world.def;
  const prefix = world.config.ELASTICSEARCH_INDEX_PREFIX;
  const main = `${prefix}ceiling`;
  const filtered = `${prefix}ceiling-filtered`;
  const terms = loadSensitiveTerms(world);
  const key = ident(def.key.column);
  const sensitive = sensitiveExpression(def, terms);
  const sql = `SELECT t.${key}::text AS id, ${documentExpression(def, sensitive)} AS doc,
      ${sensitive} AS sensitive FROM ${ident(table)} AS t`;
  const bodies: Buffer[] = [];
  let rows = 0;
  let ops = 0;
  let bytes = 0;
  const { ms: buildMs } = await timed(async () => {
    const client = await world.dbs.api.connect();
    try {
      const cursor = client.query(new Cursor<DocRow>(sql));
      let parts: string[] = [];
      let size = 0;
      const flush = () => {
        const body = Buffer.from(parts.join(''));
        bodies.push(body);
        bytes += body.length;
        parts = [];
        size = 0;
      };
      const mainAction = (id: string) => `{"index":{"_index":"${main}","_id":"${id}"}}\n`;
      const filteredAction = (id: string) => `{"index":{"_index":"${filtered}","_id":"${id}"}}\n`;
      for (;;) {
        const batch = await cursor.read(10_000);
        if (batch.length === 0) break;
        for (const row of batch) {
          rows++;
          const line = `${row.doc}\n`;
          const action = mainAction(row.id);
          parts.push(action, line);
          ops++;
          size += action.length + line.length;
          if (!row.sensitive) {
            const other = filteredAction(row.id);
            parts.push(other, line);
            ops++;
            size += other.length + line.length;
          }
          if (size >= flushBytes) flush();
        }
      }
      if (parts.length > 0) flush();
      await cursor.close();
    } finally {
      client.release();
    }
  });
  return { main, filtered, bodies, rows, ops, bytes, buildMs };
}

async function recreateIndices(es: EsClient, def: MediaDefinition, names: string[]): Promise<void> {
  await es.indices.delete({ index: names.join(','), ignore_unavailable: true });
  for (const index of names) await es.indices.create({ index, ...buildIndexBody(def) });
}

async function sendBody(es: EsClient, body: Buffer): Promise<void> {
  const res = await es.transport.request<{ errors: boolean }>(
    {
      method: 'POST',
      path: '/_bulk',
      // The ceiling parses as little of the answer as it can: only whether any item failed.
      querystring: { filter_path: 'errors' },
      bulkBody: body,
    },
    { requestTimeout: 120_000, maxRetries: 0 },
  );
  if (res.errors) throw new Error('the ES ceiling bulk request had item errors');
}

/**
 * The Elasticsearch ceiling at `concurrency` parallel bulk requests: sends the pre-built bodies
 * into fresh indices with Freshet's mapping and load settings (buildIndexBody: replicas 0,
 * refresh off), and deletes them afterwards.
 */
export async function esCeiling(
  world: World,
  bodies: BulkBodies,
  concurrency: number,
): Promise<EsCeilingRun> {
  const { es, def } = world;
  const names = [bodies.main, bodies.filtered];
  await recreateIndices(es, def, names);
  let next = 0;
  const { ms } = await timed(() =>
    Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const i = next++;
          const body = bodies.bodies[i];
          if (body === undefined) return;
          await sendBody(es, body);
        }
      }),
    ),
  );
  await es.indices.delete({ index: names.join(','), ignore_unavailable: true });
  return {
    concurrency,
    rows: bodies.rows,
    ops: bodies.ops,
    ms,
    rowsPerSec: perSecond(bodies.rows, ms),
    opsPerSec: perSecond(bodies.ops, ms),
    mbPerSec: perSecond(bodies.bytes / 1e6, ms),
  };
}
