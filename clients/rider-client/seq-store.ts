// Where a rider app keeps the last seq it gave a fix, so seq keeps rising
// across app restarts (proto/README.md, "seq"). The rider client saves
// before the fix leaves the phone.

export interface SeqStore {
  /** The last seq saved, or undefined on a fresh install. */
  load(): Promise<bigint | undefined>;
  save(seq: bigint): Promise<void>;
}

/** For tests and simulations: lives as long as the process. */
export class MemorySeqStore implements SeqStore {
  #seq: bigint | undefined;

  constructor(seq?: bigint) {
    this.#seq = seq;
  }

  async load(): Promise<bigint | undefined> {
    return this.#seq;
  }

  async save(seq: bigint): Promise<void> {
    this.#seq = seq;
  }
}
