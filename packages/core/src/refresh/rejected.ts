/** Rows rejected, by reason, with a few of their keys (the shape every count of a run takes). */
export type RejectedRows = Record<string, { count: number; sample: string[] }>;

/** The rejection reason of a row whose document Elasticsearch refused: `es-refused:<error type>`. */
export function refusedReason(type: string): string {
  return `es-refused:${type}`;
}
