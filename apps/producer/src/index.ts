export { openProducer, type Producer } from './producer.js';
export {
  startRefresh,
  retryRun,
  failedJobsOfRun,
  parseProfile,
  type RefreshRequest,
} from './refresh.js';
export {
  pauseRun,
  resumeRun,
  cancelRun,
  approveRun,
  discardRun,
  rollbackMedia,
  buildsView,
  type BuildDeps,
  type BuildsView,
  type RollbackResult,
  type ControlDeps,
} from './control.js';
export { planRefresh, formatPlan, type RefreshPlan } from './plan.js';
export { waitForRun } from './progress.js';
export {
  scheduleTable,
  loadScheduleConfig,
  parseScheduleConfig,
  ScheduleStore,
  type ScheduleTableRow,
  type SlotRow,
} from './schedule/index.js';
