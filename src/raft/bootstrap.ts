// The founding state of a new cluster. Membership lives in the log from the first entry (thesis
// §4.1): every founding member starts with the same configuration entry at index 1, term 1,
// already committed, so their logs match from the start and later changes are ordinary entries.
import { configurationProblem, encodeConfiguration } from './configuration.js';
import type { Configuration, InitialState } from './types.js';

export function bootstrapState(config: Configuration): InitialState {
  const problem = configurationProblem(config);
  if (problem !== null) throw new Error(`invalid founding configuration: ${problem}`);
  return {
    hardState: { currentTerm: 1, votedFor: null, commitIndex: 1 },
    snapshot: null,
    entries: [{ index: 1, term: 1, type: 'config', data: encodeConfiguration(config) }],
    applied: 0,
  };
}
