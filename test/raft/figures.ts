// The logs of the paper's figures, written as the term of each entry from index 1.

/** Figure 7: the leader of term 8 and six possible followers, (a)–(f). */
export const FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6] as const;
export const FIGURE_7_FOLLOWERS = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
} as const;
