/** What one seeding of one media type did. */
export interface SeedReport {
  /** Media type name. */
  readonly media: string;
  /** Rows written to the upstream table. */
  readonly rows: number;
  /** Of those, rows with the removed column set (removed_from_source = true). */
  readonly removed: number;
  /** Identifiers written to the deleted table. */
  readonly deleted: number;
  /** Wall time, in milliseconds. */
  readonly ms: number;
}
