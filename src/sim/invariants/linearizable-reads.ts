// Linearizable reads through ReadIndex (thesis §6.4): a read must observe every write that was
// acknowledged before the read was issued. The client records the highest acknowledged index
// when it issues a read; the node serves the read at its applied index, which must be at least
// that high. (A stale leader answering from its own state would fail this.)
import { violation } from './violation.js';

export class LinearizableReads {
  private served = 0;

  get count(): number {
    return this.served;
  }

  /** `nodeId` served read `requestId` at applied index `servedAt`; it had to see `mustSee`. */
  serve(nodeId: string, requestId: number, servedAt: number, mustSee: number): void {
    if (servedAt < mustSee) {
      violation('Linearizable Reads', `${nodeId} served read ${requestId} at index ${servedAt}, but index ${mustSee} was acknowledged before the read began`);
    }
    this.served++;
  }
}
