import { buildIndexBody, ident, literal, sensitiveExpression } from '@freshet/core';
import Cursor from 'pg-cursor';
import { loadSensitiveTerms } from './es-ceiling.js';
import { perSecond, timed } from './measure.js';
import type { World } from './world.js';

export interface BaselineRun {
  readonly rows: number;
  readonly ops: number;
  readonly ms: number;
  readonly rowsPerSec: number;
}

type Row = Record<string, unknown> & { __sensitive: boolean; __id: string };

interface Op {
  index: string;
  id: string;
  doc: Record<string, unknown>;
}

/**
 * What a user would write by hand: one process, a pg-cursor over the cleaned table selecting
 * the document's fields as row objects, fed to the client's bulk helper with its default
 * settings (5 MB bodies, 5 requests in flight). It writes the same operations as Freshet (every
 * row to the main index, the non-sensitive ones to the filtered index too; the sensitivity is
 * computed with Freshet's own SQL), into fresh indices with the same mapping and settings.
 */
export async function baseline(world: World, table: string): Promise<BaselineRun> {
  const { es, def } = world;
  const prefix = world.config.ELASTICSEARCH_INDEX_PREFIX;
  const main = `${prefix}baseline`;
  const filtered = `${prefix}baseline-filtered`;
  await es.indices.delete({ index: `${main},${filtered}`, ignore_unavailable: true });
  for (const index of [main, filtered]) await es.indices.create({ index, ...buildIndexBody(def) });

  const fields = Object.entries(def.document.fields).map(([field, spec]) =>
    typeof spec === 'string'
      ? `t.${ident(spec)} AS ${ident(field)}`
      : `t.${ident(spec.column)} ->> ${literal(spec.key)} AS ${ident(field)}`,
  );
  const sql = `SELECT t.${ident(def.key.column)}::text AS __id, ${fields.join(', ')},
      ${sensitiveExpression(def, loadSensitiveTerms(world))} AS __sensitive FROM ${ident(table)} AS t`;

  let rows = 0;
  let ops = 0;
  const client = await world.dbs.api.connect();
  try {
    const { ms } = await timed(async () => {
      const cursor = client.query(new Cursor<Row>(sql));
      async function* documents(): AsyncGenerator<Op> {
        try {
          for (;;) {
            const batch = await cursor.read(1000);
            if (batch.length === 0) return;
            for (const row of batch) {
              const { __id: id, __sensitive: sensitive, ...doc } = row;
              rows++;
              ops++;
              yield { index: main, id, doc };
              if (!sensitive) {
                ops++;
                yield { index: filtered, id, doc };
              }
            }
          }
        } finally {
          await cursor.close();
        }
      }
      const stats = await es.helpers.bulk<Op>({
        datasource: documents(),
        onDocument: (op) => [{ index: { _index: op.index, _id: op.id } }, op.doc],
      });
      if (stats.failed > 0) throw new Error(`baseline: ${stats.failed} documents failed`);
    });
    return { rows, ops, ms, rowsPerSec: perSecond(rows, ms) };
  } finally {
    client.release();
    await es.indices.delete({ index: `${main},${filtered}`, ignore_unavailable: true });
  }
}
