// The linearizability checker's public surface: check a recorded history against a model, and
// render what went wrong. Pure and standalone: imports nothing outside src/check/.
export type {
  CheckOptions,
  CheckOutcome,
  CheckResult,
  CheckStats,
  History,
  HistoryOp,
  LinearizableResult,
  Model,
  OpDescription,
  ProcessId,
  StepResult,
  UnknownResult,
  Violation,
  ViolationResult,
  WindowOp,
  WindowRole,
} from './types.js';
export { CHECK_OUTCOMES, DEFAULT_CHECK_OPTIONS, WINDOW_ROLES } from './types.js';
export { checkHistory } from './check.js';
export {
  InvalidHistoryError,
  WHOLE_HISTORY_KEY,
  effectiveReturn,
  isUnknownOutcome,
  partitionHistory,
  validateHistory,
} from './history.js';
export type { Partition } from './history.js';
export { formatCheckResult, formatInterval, renderViolationText } from './render-text.js';
export { renderTimelineHtml } from './render-timeline.js';
export type { TimelineOptions } from './render-timeline.js';
export { registerModel, describeRegister } from './models/register.js';
export type { RegisterInput, RegisterOutput, RegisterState } from './models/register.js';
export { kvModel, describeKv } from './models/kv.js';
export type { KvInput, KvOutput, KvState } from './models/kv.js';
export { formatValue, hashValue } from './models/value.js';
export type { Value } from './models/value.js';
