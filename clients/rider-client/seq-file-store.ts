// A SeqStore in a file (Bun, Node, a CLI rider): one decimal line, replaced
// atomically (write a temporary file, then rename) so a crash mid-write
// leaves the old value, never half a number.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { SeqStore } from "./seq-store";

export class FileSeqStore implements SeqStore {
  readonly #path: string;
  /** Saves run one after another, so an older seq never lands after a newer one. */
  #saving: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async load(): Promise<bigint | undefined> {
    const text = await readFile(this.#path, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (text === undefined) return undefined;
    const line = text.trim();
    if (!/^\d{1,20}$/.test(line))
      throw new Error(`${this.#path} holds no seq: ${line.slice(0, 40)}`);
    return BigInt(line);
  }

  save(seq: bigint): Promise<void> {
    const write = async () => {
      await mkdir(dirname(this.#path), { recursive: true });
      const temporary = `${this.#path}.${process.pid}.tmp`;
      await writeFile(temporary, `${seq}\n`);
      await rename(temporary, this.#path);
    };
    this.#saving = this.#saving.then(write, write);
    return this.#saving;
  }
}
