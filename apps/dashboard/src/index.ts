export {
  startDashboard,
  createDashboardApp,
  type Dashboard,
  type DashboardOptions,
} from './app.js';
export {
  roleTokens,
  roleFromAuthorization,
  safeEqual,
  type Role,
  type RoleTokens,
} from './auth.js';
export { queueStates, snapshotQueues, type QueueSnapshot } from './metrics.js';
export { computePace, type Pace, type PaceInput } from './throughput.js';
export { RunView, comparisonOf, shrinkOf, type RunDetails, type RunSummary } from './run-view.js';
export { Schedules, type LastSlot, type ScheduleView, type SchedulesView } from './schedules.js';
