export { Correlator } from './correlator.js';
export type { CorrelatorDeps } from './correlator.js';
export {
  DEFAULT_CHURN,
  DEFAULT_LIMITS,
  DEFAULT_REVOCATION_EVENT_TYPES,
  DEFAULT_RULE_SETTINGS,
  resolveCorrelatorOptions,
} from './options.js';
export type {
  ChurnOptions,
  CorrelatorLimits,
  CorrelatorOptions,
  KindJoins,
  KindRule,
  ResolvedCorrelatorOptions,
  RuleSettings,
} from './options.js';
export type { Clock, CorrelatorObservations, CorrelatorStats, RevocationLatency } from './types.js';
export type { IndexObservation } from './rules/orphaned-index.js';
