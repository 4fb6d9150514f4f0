import type { Client } from '@elastic/elasticsearch';
import type { AdmissionControl } from '../admission.js';
import type { Config } from '../config.js';
import type { Databases } from '../db.js';
import type { JobScope } from '../job-scope.js';
import type { Logger } from '../logger.js';
import type { MediaCatalog } from '../media.js';
import type { RunStore } from '../run-store.js';
import type { BufferPool, Slots } from './bulk.js';

/**
 * What the refresh steps ask of alerts: to tell about a run's current status (the notifier of
 * alerts/delivery.ts is one; declared here so the steps do not depend on how alerts are built).
 */
export interface RunStatusNotifier {
  notifyRunStatus(runId: string, detail?: string): Promise<unknown>;
}

/** What every refresh step needs: settings, connections, media types and the run store. */
export interface RefreshContext {
  readonly config: Config;
  readonly dbs: Databases;
  readonly es: Client;
  readonly media: MediaCatalog;
  readonly store: RunStore;
  readonly sensitiveTerms: readonly string[];
  readonly logger: Logger;
  /** Headroom check before heavy work (workers have one; absent means always admitted). */
  readonly admission?: AdmissionControl;
  /** Alerts on blocked, failed and succeeded runs (absent: none are sent). */
  readonly notifier?: RunStatusNotifier;
  /**
   * Bulk requests in flight to Elasticsearch from this process, shared by its index jobs
   * (INDEX_BULK_CONCURRENCY). Absent: each index job gets its own.
   */
  readonly bulkSlots?: Slots;
  /** Request body buffers reused by this process's index jobs. */
  readonly bulkBuffers?: BufferPool;
}

/** A refresh context bound to one job attempt: its connections are tagged and cancellable. */
export interface JobContext extends RefreshContext {
  readonly scope: JobScope;
}
