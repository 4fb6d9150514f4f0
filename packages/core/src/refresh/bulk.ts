import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@elastic/elasticsearch';

/**
 * A counting semaphore: at most `size` holders at once, the rest wait in order. A worker process
 * shares one for its bulk requests, so however many index jobs it runs, no more than
 * INDEX_BULK_CONCURRENCY requests are in flight to Elasticsearch (and in memory) at a time.
 */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new Error(`slots: size ${size} < 1`);
    this.free = size;
  }

  /** Waits for a slot; call the returned function once to give it back. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(grant);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason as Error);
        };
        this.waiting.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * Reuses request body buffers: a fresh multi-megabyte buffer per request costs page faults on
 * every first touch; a worker keeps a few (its requests in flight, plus one being filled).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep: number) {}

  take(capacity: number): Buffer | undefined {
    const i = this.free.findIndex((b) => b.length >= capacity);
    return i < 0 ? undefined : this.free.splice(i, 1)[0];
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep && buf.length > 0) this.free.push(buf);
  }
}

/**
 * One bulk request body being filled: operations (each its NDJSON bytes, action line and document
 * line) are copied in back to back, so sending it costs no serialization and no concatenation.
 */
export class BulkBody {
  /** Taken on the first operation (an empty chunk costs no buffer). */
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;
  /** End offset of each operation, to resend some of them. */
  readonly ends: number[] = [];

  constructor(
    private readonly capacity: number,
    private readonly pool?: BufferPool,
  ) {}

  /** Gives the memory back to the pool; the body must not be used afterwards. */
  dispose(): void {
    this.pool?.give(this.buf);
    this.buf = Buffer.alloc(0);
    this.used = 0;
  }

  get bytes(): number {
    return this.used;
  }

  get count(): number {
    return this.ends.length;
  }

  /** Makes room for `need` bytes in all, taking a buffer on the first operation. */
  private reserve(need: number): void {
    if (this.buf.length === 0) {
      this.buf =
        this.pool?.take(this.capacity) ?? Buffer.allocUnsafeSlow(Math.max(1024, this.capacity));
    }
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
  }

  /** Adds one operation: its action line `src[start, end)` and document line `src[docStart, docEnd)`. */
  add(src: Buffer, start: number, end: number, docStart: number, docEnd: number): void {
    const need = this.used + (end - start) + (docEnd - docStart);
    this.reserve(need);
    this.used += src.copy(this.buf, this.used, start, end);
    this.used += src.copy(this.buf, this.used, docStart, docEnd);
    this.ends.push(need);
  }

  /** Adds one operation from text: its action line and document line (each ending in a newline). */
  addText(action: string, doc: string): void {
    const need = this.used + Buffer.byteLength(action) + Buffer.byteLength(doc);
    this.reserve(need);
    this.used += this.buf.write(action, this.used);
    this.used += this.buf.write(doc, this.used);
    this.ends.push(need);
  }

  /** The body as sent. */
  view(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  /** Operation i's bytes. */
  op(i: number): Buffer {
    return this.buf.subarray(i === 0 ? 0 : (this.ends[i - 1] ?? 0), this.ends[i]);
  }
}

export interface BulkFailure {
  /** The document's `_id` and index, from the operation's action line. */
  readonly id: string;
  readonly index: string;
  readonly status: number;
  readonly error: unknown;
}

/** A document Elasticsearch refused for its content (see {@link isContentRefusal}). */
export interface BulkRefusal {
  readonly id: string;
  readonly index: string;
  /** The error type, e.g. `document_parsing_exception`. */
  readonly type: string;
  /** Elasticsearch's explanation (which field, what value). */
  readonly reason: string;
}

export interface BulkOutcome {
  /** Operations Elasticsearch acknowledged (2xx). */
  readonly succeeded: number;
  /**
   * Operations refused for good for another reason than their content (a status other than 2xx,
   * 429 and a content refusal, or 429 after every retry): the chunk fails and is retried.
   */
  readonly failed: number;
  /** The first few failures. */
  readonly samples: readonly BulkFailure[];
  /** Every operation refused for its content: its row is rejected, not retried. */
  readonly refused: readonly BulkRefusal[];
}

/**
 * Error types Elasticsearch gives a document it cannot take as it is: a value its mapping cannot
 * parse (an object for a keyword, text for an integer, an infinite float), a field a strict
 * mapping does not have, JSON nested beyond its limit, a term over 32 KB. Sending it again gives
 * the same answer, whatever the cluster's state.
 */
const contentErrorTypes: ReadonlySet<string> = new Set([
  'document_parsing_exception',
  'mapper_parsing_exception',
  'strict_dynamic_mapping_exception',
  'illegal_argument_exception',
  'x_content_parse_exception',
  'json_parse_exception',
  'parse_exception',
  'number_format_exception',
]);

/**
 * True when a bulk item was refused for the document's content (status 400 with one of the
 * {@link contentErrorTypes}). Everything else — 429, a block (403 `cluster_block_exception`), a
 * closed or missing index, 5xx, an unknown 400 — says nothing about the document, so it fails
 * the chunk as before and is retried.
 */
export function isContentRefusal(status: number, error: unknown): boolean {
  const type = (error as { type?: unknown } | undefined)?.type;
  return status === 400 && typeof type === 'string' && contentErrorTypes.has(type);
}

export interface BulkRetry {
  /** Retries of a request refused as a whole with 429 (backoff 0.5 s, 1 s, ...). */
  readonly requestRetries: number;
  readonly requestWaitMs: number;
  /** Retries of the operations a request refused one by one with 429. */
  readonly itemRetries: number;
  readonly itemWaitMs: number;
}

export const defaultBulkRetry: BulkRetry = {
  requestRetries: 6,
  requestWaitMs: 500,
  itemRetries: 3,
  itemWaitMs: 1000,
};

interface ItemResult {
  status: number;
  error?: unknown;
}

/** Only what is needed to tell each item's fate: ES serializes and we parse far less. */
const FILTER_PATH = 'errors,items.*.status,items.*.error';

function status(err: unknown): number | undefined {
  return (err as { meta?: { statusCode?: number } }).meta?.statusCode;
}

/**
 * Sends `ops` (each an operation's NDJSON bytes: action line and document line) as one bulk
 * request, without serializing anything per document,
 * retrying a request refused as a whole with 429 and the operations refused one by one with 429;
 * operations refused for their content are returned as refused, anything else refused as
 * failed: never dropped silently. Throws on a request that
 * fails otherwise (network, 5xx after the client's own retries), so the chunk is retried.
 */
export async function sendBulk(
  es: Client,
  body: BulkBody,
  signal: AbortSignal,
  retry: BulkRetry = defaultBulkRetry,
): Promise<BulkOutcome> {
  let payload = body.view();
  let pending = Array.from({ length: body.count }, (_, i) => i);
  let succeeded = 0;
  let failed = 0;
  const samples: BulkFailure[] = [];
  const refused: BulkRefusal[] = [];
  for (let round = 0; pending.length > 0; round++) {
    let items: { [op: string]: ItemResult }[] | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        // The transport's own bulk request (what `es.bulk` sends), with the body already NDJSON:
        // a Buffer is sent as it is, never serialized again.
        const res = await es.transport.request<{ items?: { [op: string]: ItemResult }[] }>(
          {
            method: 'POST',
            path: '/_bulk',
            querystring: { filter_path: FILTER_PATH },
            bulkBody: payload,
            meta: { name: 'bulk' },
          },
          { signal },
        );
        items = res.items;
        break;
      } catch (err) {
        if (status(err) !== 429 || attempt >= retry.requestRetries || signal.aborted) throw err;
        await delay(retry.requestWaitMs * 2 ** attempt, undefined, { signal });
      }
    }
    if (items?.length !== pending.length) {
      throw new Error(
        `bulk request of ${pending.length} operations answered ${items?.length ?? 0} items; the chunk is retried`,
      );
    }
    const again: number[] = [];
    const target = (op: number) => {
      const bytes = body.op(op);
      const line = bytes.subarray(0, Math.max(0, bytes.indexOf(10))).toString();
      const action = (JSON.parse(line) as { index?: { _index?: string; _id?: string } }).index;
      return { id: action?._id ?? '?', index: action?._index ?? '?' };
    };
    items.forEach((item, i) => {
      const result = Object.values(item)[0];
      const code = result?.status ?? 0;
      const op = pending[i] ?? 0;
      if (code >= 200 && code < 300) {
        succeeded++;
      } else if (code === 429 && round < retry.itemRetries) {
        again.push(op);
      } else if (isContentRefusal(code, result?.error)) {
        const error = result?.error as { type: string; reason?: unknown };
        refused.push({
          ...target(op),
          type: error.type,
          reason: typeof error.reason === 'string' ? error.reason.slice(0, 300) : '',
        });
      } else {
        failed++;
        if (samples.length < 10)
          samples.push({ ...target(op), status: code, error: result?.error });
      }
    });
    pending = again;
    if (pending.length > 0) {
      payload = Buffer.concat(pending.map((op) => body.op(op)));
      await delay(retry.itemWaitMs, undefined, { signal });
    }
  }
  return { succeeded, failed, samples, refused };
}
