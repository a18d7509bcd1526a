import { readFileSync } from "node:fs";

/**
 * The process's soft limit on open files (`ulimit -n`), from
 * /proc/self/limits; undefined where that file does not exist (not Linux)
 * or says "unlimited". Neither Node nor Bun exposes getrlimit.
 */
export function readOpenFileLimit(path = "/proc/self/limits"): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}
