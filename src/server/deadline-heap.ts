// A binary min-heap of (deadline, id) pairs, earliest first and, at equal deadlines, the smaller id
// first: the lease keeper's expiry order (leases.ts). Entries are never updated in place: a later
// deadline for the same id is pushed beside the old one, and the keeper drops an entry that no
// longer matches its map when it surfaces (lazy deletion); rebuild() sheds them in bulk.
export class DeadlineHeap {
  private deadlines: number[] = [];
  private ids: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  /** The earliest deadline (Infinity when empty). */
  get earliest(): number {
    return this.deadlines[0] ?? Number.POSITIVE_INFINITY;
  }

  /** The id of the earliest entry (undefined when empty). */
  get earliestId(): number | undefined {
    return this.ids[0];
  }

  push(deadline: number, id: number): void {
    this.deadlines.push(deadline);
    this.ids.push(id);
    this.up(this.ids.length - 1);
  }

  /** Removes the earliest entry. */
  pop(): void {
    const last = this.ids.length - 1;
    if (last < 0) return;
    this.deadlines[0] = this.deadlines[last]!;
    this.ids[0] = this.ids[last]!;
    this.deadlines.pop();
    this.ids.pop();
    if (last > 0) this.down(0);
  }

  /** Replaces the contents with these entries, in O(n). */
  rebuild(entries: Iterable<readonly [id: number, deadline: number]>): void {
    this.deadlines = [];
    this.ids = [];
    for (const [id, deadline] of entries) {
      this.deadlines.push(deadline);
      this.ids.push(id);
    }
    for (let i = (this.ids.length >>> 1) - 1; i >= 0; i--) this.down(i);
  }

  clear(): void {
    this.deadlines = [];
    this.ids = [];
  }

  private less(i: number, j: number): boolean {
    const a = this.deadlines[i]!;
    const b = this.deadlines[j]!;
    return a < b || (a === b && this.ids[i]! < this.ids[j]!);
  }

  private swap(i: number, j: number): void {
    const d = this.deadlines[i]!;
    this.deadlines[i] = this.deadlines[j]!;
    this.deadlines[j] = d;
    const id = this.ids[i]!;
    this.ids[i] = this.ids[j]!;
    this.ids[j] = id;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.ids.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const c = r < n && this.less(r, l) ? r : l;
      if (!this.less(c, i)) return;
      this.swap(i, c);
      i = c;
    }
  }
}
