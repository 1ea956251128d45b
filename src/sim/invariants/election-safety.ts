// Election Safety (Raft paper Figure 3, §5.2): at most one leader can be elected in a given term.
// Checked over ALL history: the first node seen leading a term owns it forever, across crashes.
import type { NodeView } from './violation.js';
import { violation } from './violation.js';

export class ElectionSafety {
  /** leaderOf[term] = the node seen leading that term. */
  private readonly leaderOf: (string | undefined)[] = [];
  private count = 0;

  /** Distinct (term, leader) pairs seen: the number of elections won. */
  get elections(): number {
    return this.count;
  }

  observe(node: NodeView): void {
    if (node.role !== 'leader') return;
    const term = node.currentTerm;
    const owner = this.leaderOf[term];
    if (owner === node.id) return;
    if (owner !== undefined) violation('Election Safety', `term ${term} has two leaders: ${owner} and ${node.id}`);
    this.leaderOf[term] = node.id;
    this.count++;
  }

  leaderOfTerm(term: number): string | undefined {
    return this.leaderOf[term];
  }
}
