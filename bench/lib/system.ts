// What the benchmark needs of a system under test, whichever it is.
import type { HttpRequest } from './http.js';

export interface SystemUnderTest {
  readonly name: string;
  /** Base URL of the member that leads now; the load goes there. */
  readonly leaderUrl: string;
  readonly leaderName: string;
  /** How the load reaches it, printed with the results. */
  readonly note: string;
  /** Kills every process and removes the data dirs. */
  stop(): Promise<void>;
}

export interface Workload {
  /** One prebuilt request per key; the n-th request of a run uses key n mod keys (scrambled). */
  readonly requests: readonly HttpRequest[];
  readonly isOk: (status: number) => boolean;
}
