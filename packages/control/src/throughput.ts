/** Length of the window recent throughput is measured over (seconds). */
export const throughputWindowSeconds = 60;

/** What the run store says about the pace of a run's chunks. */
export interface PaceInput {
  /** Whether the run can still make progress (an active status). */
  readonly active: boolean;
  /** Seconds since the first chunk attempt started (null: no chunk has started). */
  readonly sinceFirstChunkSeconds: number | null;
  /** Seconds between the first chunk attempt's start and the last index step's end. */
  readonly chunkPhaseSeconds: number | null;
  readonly totalChunks: number;
  readonly indexedChunks: number;
  readonly rowsIndexed: number;
  /** Index steps finished within the window, and the rows they indexed. */
  readonly windowChunks: number;
  readonly windowRows: number;
}

/** Rows per second and an estimate of the time left for the chunks. */
export interface Pace {
  /** Rows indexed per second (recent while active, else the average over the chunk phase). */
  readonly rowsPerSecond: number | null;
  /** Chunks fully indexed per second, on the same basis. */
  readonly chunksPerSecond: number | null;
  /** Seconds until every chunk is indexed at the current pace; null when unknown or done. */
  readonly etaSeconds: number | null;
  /** What the rates are measured over, for the page to say. */
  readonly basis: 'recent' | 'whole run' | 'none';
  readonly windowSeconds: number | null;
}

/**
 * Derives throughput and ETA from chunk progress. While the run is active the rates cover the
 * last {@link throughputWindowSeconds} seconds (or less, early in the run), so a slowdown shows
 * at once; the ETA divides the chunks left by that chunk rate (chunks are even slices of the key
 * space, so chunks are a steadier unit than rows). A finished run reports its average.
 */
export function computePace(p: PaceInput): Pace {
  const none: Pace = {
    rowsPerSecond: null,
    chunksPerSecond: null,
    etaSeconds: null,
    basis: 'none',
    windowSeconds: null,
  };
  if (p.active) {
    if (p.sinceFirstChunkSeconds === null || p.sinceFirstChunkSeconds <= 0) return none;
    const window = Math.min(throughputWindowSeconds, p.sinceFirstChunkSeconds);
    const chunksPerSecond = p.windowChunks / window;
    const rowsPerSecond = p.windowRows / window;
    const left = Math.max(0, p.totalChunks - p.indexedChunks);
    const etaSeconds =
      p.totalChunks === 0 || chunksPerSecond === 0
        ? left === 0 && p.totalChunks > 0
          ? 0
          : null
        : left / chunksPerSecond;
    return { rowsPerSecond, chunksPerSecond, etaSeconds, basis: 'recent', windowSeconds: window };
  }
  if (p.chunkPhaseSeconds === null || p.chunkPhaseSeconds <= 0) return none;
  return {
    rowsPerSecond: p.rowsIndexed / p.chunkPhaseSeconds,
    chunksPerSecond: p.indexedChunks / p.chunkPhaseSeconds,
    etaSeconds: null,
    basis: 'whole run',
    windowSeconds: p.chunkPhaseSeconds,
  };
}
