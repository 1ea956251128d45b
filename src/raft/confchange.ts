// Membership changes by joint consensus (thesis §4.3, paper §6). A change moves the cluster
// from C_old to C_new through C_old,new: the leader first appends C_old,new (voters = C_new,
// votersOutgoing = C_old), under which elections and commitment need majorities of both sets;
// once that entry commits it appends C_new alone. Learners (thesis §4.2.1) receive the log but
// never vote or count toward a majority; a new server joins as one so it cannot stall commits.
import { isValidNodeId } from './configuration.js';
import { RaftError } from './errors.js';
import type { Configuration, NodeId } from './types.js';

export const CONFIG_CHANGE_TYPES = ['add-learner', 'add-voter', 'promote', 'remove'] as const;
export type ConfigChangeType = (typeof CONFIG_CHANGE_TYPES)[number];

export interface ConfigChange {
  readonly type: ConfigChangeType;
  readonly id: NodeId;
}

export class InvalidConfigChangeError extends RaftError {
  constructor(message: string) {
    super('INVALID_CONFIG_CHANGE', message);
  }
}

/**
 * The configuration the changes lead to (C_new), from a configuration not in a joint state.
 * `add-voter` on a server that is not yet a member adds it as a voter directly; the service
 * layer adds new servers as learners first and promotes them when caught up.
 */
export function applyChanges(current: Configuration, changes: readonly ConfigChange[]): Configuration {
  if (current.votersOutgoing.length > 0) throw new InvalidConfigChangeError('a joint configuration is still in force');
  const voters = new Set(current.voters);
  const learners = new Set(current.learners);
  for (const c of changes) {
    // Every member's id travels in every InstallSnapshot: one the codec cannot carry would leave
    // the leader unable to encode its own messages.
    if (!isValidNodeId(c.id)) throw new InvalidConfigChangeError(`${String(c.id)} is not a valid node id`);
    switch (c.type) {
      case 'add-learner':
        if (voters.has(c.id)) throw new InvalidConfigChangeError(`${c.id} is already a voter`);
        learners.add(c.id);
        break;
      case 'add-voter':
      case 'promote':
        if (c.type === 'promote' && !learners.has(c.id)) throw new InvalidConfigChangeError(`${c.id} is not a learner`);
        learners.delete(c.id);
        voters.add(c.id);
        break;
      case 'remove':
        if (!voters.has(c.id) && !learners.has(c.id)) throw new InvalidConfigChangeError(`${c.id} is not a member`);
        voters.delete(c.id);
        learners.delete(c.id);
        break;
      default: {
        const never: never = c.type;
        throw new InvalidConfigChangeError(`unknown change ${String(never)}`);
      }
    }
  }
  if (voters.size === 0) throw new InvalidConfigChangeError('the change would leave no voters');
  return { voters: [...voters], votersOutgoing: [], learners: [...learners] };
}

/**
 * The entry to append for a change from `current` to `next`. Only the voter sets need the joint
 * step; a change of learners alone is safe to apply directly, since learners never count.
 */
export function transitionTo(current: Configuration, next: Configuration): Configuration {
  const sameVoters = current.voters.length === next.voters.length && current.voters.every((v) => next.voters.includes(v));
  if (sameVoters) return next;
  return { voters: next.voters, votersOutgoing: current.voters, learners: next.learners };
}

/** The configuration that ends a joint state: C_new alone. */
export function leaveJoint(joint: Configuration): Configuration {
  return { voters: joint.voters, votersOutgoing: [], learners: joint.learners };
}
