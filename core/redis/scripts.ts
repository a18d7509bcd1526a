import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";
import { keys } from "./keys";

/**
 * Every Lua script, registered once per client with ioredis `defineCommand`
 * (EVALSHA, falling back to EVAL after a Redis restart flushed the script
 * cache). The scripts never build keys: callers pass them from `keys.ts`.
 */
const SCRIPTS = {
  pruneStaleRiders: { file: "prune-stale-riders.lua", keys: 2 },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

/** A client with the scripts above as typed commands. */
export type ScriptCommands = {
  [name in ScriptName]: (...args: ScriptArg[]) => Promise<unknown>;
};

export type RedisClient = (Redis | Cluster) & ScriptCommands;

let sources: Map<ScriptName, string> | undefined;

function scriptSources(): Map<ScriptName, string> {
  sources ??= new Map(
    (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [
      name,
      readFileSync(new URL(`./lua/${SCRIPTS[name].file}`, import.meta.url), "utf8"),
    ]),
  );
  return sources;
}

export function registerScripts(client: Redis | Cluster): RedisClient {
  for (const [name, lua] of scriptSources()) {
    client.defineCommand(name, { lua, numberOfKeys: SCRIPTS[name].keys });
  }
  return client as RedisClient;
}

/** Prunes up to `batch` riders of one city not seen since `cutoffMs`; returns how many left. */
export async function pruneStaleRiders(
  client: RedisClient,
  city: string,
  cutoffMs: number,
  batch: number,
): Promise<number> {
  const pruned = await client.pruneStaleRiders(
    keys.cityRiders(city),
    keys.cityRidersSeen(city),
    cutoffMs,
    batch,
  );
  return Number(pruned);
}
