import { buildIndexBody, refreshNames, type EsClient, type MediaDefinition } from '@freshet/core';
import { perSecond, timed } from './measure.js';
import type { World } from './world.js';

/**
 * The two shapes of the Elasticsearch ceiling: `main` writes every document once into one index
 * (the reference: a refresh needs no more), `two-index` also writes the documents without
 * sensitive terms into a second, filtered index (what a pipeline building a separate filtered
 * index has to send).
 */
export type CeilingKind = 'main' | 'two-index';

/** Pre-serialized bulk request bodies of one ceiling shape. */
export interface BulkBodies {
  readonly kind: CeilingKind;
  /** The indices the bodies write to (created fresh for every try). */
  readonly indices: readonly string[];
  readonly bodies: readonly Buffer[];
  /** Documents of the main index (rows). */
  readonly rows: number;
  /** Bulk operations (main documents, plus the filtered copies for `two-index`). */
  readonly ops: number;
  readonly bytes: number;
}

/** The documents Freshet indexed, as bulk bodies of both shapes. */
export interface CeilingBodies {
  readonly main: BulkBodies;
  readonly twoIndex: BulkBodies;
  /** Documents the filtered alias serves (those without sensitive terms). */
  readonly filtered: number;
  /** Time to read them back from Elasticsearch and build the bodies (not part of any ceiling). */
  readonly buildMs: number;
}

export interface EsCeilingRun {
  readonly kind: CeilingKind;
  readonly concurrency: number;
  readonly rows: number;
  readonly ops: number;
  readonly ms: number;
  /** Main documents (rows) per second. */
  readonly rowsPerSec: number;
  readonly opsPerSec: number;
  readonly mbPerSec: number;
}

const scrollPage = 2000;
const keepAlive = '2m';

/** Calls `onPage` with every hit of `index`, in index order, through a scroll. */
async function scrollAll<T>(
  es: EsClient,
  index: string,
  source: boolean,
  onPage: (hits: readonly { _id?: string; _source?: T }[]) => void,
): Promise<void> {
  let res = await es.search<T>({
    index,
    scroll: keepAlive,
    size: scrollPage,
    sort: ['_doc'],
    _source: source,
  });
  const ids: string[] = [];
  try {
    for (;;) {
      if (res._scroll_id) ids.push(res._scroll_id);
      const hits = res.hits.hits;
      if (hits.length === 0) return;
      onPage(hits);
      res = await es.scroll<T>({ scroll_id: res._scroll_id ?? '', scroll: keepAlive });
    }
  } finally {
    if (ids.length > 0) await es.clearScroll({ scroll_id: [...new Set(ids)] }).catch(() => {});
  }
}

/** Accumulates NDJSON bulk operations into bodies of about `flushBytes`. */
class BodyBuilder {
  readonly bodies: Buffer[] = [];
  rows = 0;
  ops = 0;
  bytes = 0;
  private parts: string[] = [];
  private size = 0;

  constructor(private readonly flushBytes: number) {}

  add(action: string, line: string): void {
    this.parts.push(action, line);
    this.ops++;
    this.size += action.length + line.length;
    if (this.size >= this.flushBytes) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const body = Buffer.from(this.parts.join(''));
    this.bodies.push(body);
    this.bytes += body.length;
    this.parts = [];
    this.size = 0;
  }
}

/**
 * Reads back the documents the last refresh indexed (the `_source` of every document behind the
 * media type's live alias: exactly what Freshet sent, whichever pipeline built it; `_id` = key)
 * and which of them the filtered alias serves, and serializes the bulk operations of both
 * ceiling shapes into NDJSON bodies of about `flushBytes` (Freshet's INDEX_BULK_FLUSH_BYTES),
 * held in memory.
 */
export async function buildCeilingBodies(world: World, flushBytes: number): Promise<CeilingBodies> {
  const prefix = world.config.ELASTICSEARCH_INDEX_PREFIX;
  const names = refreshNames(world.def, 'production', 'bench', prefix);
  const mainIndex = `${prefix}ceiling`;
  const filteredIndex = `${prefix}ceiling-filtered`;
  const main = new BodyBuilder(flushBytes);
  const two = new BodyBuilder(flushBytes);
  const { value: filtered, ms: buildMs } = await timed(async () => {
    const clean = new Set<string>();
    await scrollAll(world.es, names.filteredAlias, false, (hits) => {
      for (const h of hits) if (h._id !== undefined) clean.add(h._id);
    });
    await scrollAll<unknown>(world.es, names.alias, true, (hits) => {
      for (const h of hits) {
        if (h._id === undefined) continue;
        const id = JSON.stringify(h._id);
        const line = `${JSON.stringify(h._source)}\n`;
        const action = `{"index":{"_index":"${mainIndex}","_id":${id}}}\n`;
        main.rows++;
        two.rows++;
        main.add(action, line);
        two.add(action, line);
        if (clean.has(h._id))
          two.add(`{"index":{"_index":"${filteredIndex}","_id":${id}}}\n`, line);
      }
    });
    main.flush();
    two.flush();
    return clean.size;
  });
  const shape = (kind: CeilingKind, b: BodyBuilder, indices: string[]): BulkBodies => ({
    kind,
    indices,
    bodies: b.bodies,
    rows: b.rows,
    ops: b.ops,
    bytes: b.bytes,
  });
  return {
    main: shape('main', main, [mainIndex]),
    twoIndex: shape('two-index', two, [mainIndex, filteredIndex]),
    filtered,
    buildMs,
  };
}

async function recreateIndices(
  es: EsClient,
  def: MediaDefinition,
  names: readonly string[],
): Promise<void> {
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
  await recreateIndices(es, def, bodies.indices);
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
  await es.indices.delete({ index: bodies.indices.join(','), ignore_unavailable: true });
  return {
    kind: bodies.kind,
    concurrency,
    rows: bodies.rows,
    ops: bodies.ops,
    ms,
    rowsPerSec: perSecond(bodies.rows, ms),
    opsPerSec: perSecond(bodies.ops, ms),
    mbPerSec: perSecond(bodies.bytes / 1e6, ms),
  };
}
