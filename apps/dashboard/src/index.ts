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
export { Schedules, type LastSlot, type ScheduleView, type SchedulesView } from './schedules.js';
