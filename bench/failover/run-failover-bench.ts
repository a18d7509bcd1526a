import { join } from "node:path";
import {
  type FailoverOutcome,
  killMasterUnderLoad,
  startFailoverRig,
} from "../../test/support/failover-scenario";
import { startRedisCluster } from "../../test/support/redis-server";
import { lineReader, spawnBun } from "../support/child";

export interface FailoverBenchOptions {
  seconds: number;
  /** Order changes per second for the cost-of-WAIT rounds. */
  rate: number;
  /** Rounds per setting (replicas 0 and 1, alternating). */
  rounds: number;
  /** Master kills, each on a fresh cluster and fresh tiers. */
  kills: number;
  /** Orders stepping through their statuses during each kill. */
  orders: number;
  /** Changes of each as-fast-as-it-goes run. */
  maxChanges: number;
  progress: (line: string) => void;
}

export interface AckedWriteRun {
  replicas: number;
  /** Change latency at `rate`, one entry per round. */
  p50Ms: number[];
  p99Ms: number[];
  /** Changes per second with 200 in flight. */
  maxPerSecond: number;
  failed: number;
}

export interface FailoverBenchResult {
  options: Omit<FailoverBenchOptions, "progress">;
  acked: AckedWriteRun[];
  kills: FailoverOutcome[];
}

interface LoadResult {
  changes: number;
  failed: number;
  seconds: number;
  latencyMs: { p50: number; p99: number };
}

async function runLoad(nodesEnv: string, args: Record<string, string>): Promise<LoadResult> {
  const child = spawnBun(join(import.meta.dir, "..", "support", "load-status-changes.ts"), [
    ...["--cluster", nodesEnv, "--seed"],
    ...Object.entries(args).flatMap(([name, value]) => [`--${name}`, value]),
  ]);
  return JSON.parse(await lineReader(child).until((line) => line.startsWith("{"))) as LoadResult;
}

/**
 * What acknowledging order changes only once a replica has them costs, and
 * what a master failover looks like. First, on a 3-master, 3-replica
 * cluster, a load process runs the status script as the gateway does, with
 * `ORDER_WRITE_REPLICAS` 0 and 1 in alternating rounds at `rate`, then as
 * fast as it goes. Then, `kills` times on fresh clusters and tiers, the
 * failover scenario of the e2e test (test/support/failover-scenario.ts).
 */
export async function runFailoverBench(
  options: FailoverBenchOptions,
): Promise<FailoverBenchResult> {
  const { seconds, rate, rounds, kills, orders, progress } = options;
  const acked: AckedWriteRun[] = [0, 1].map((replicas) => ({
    replicas,
    p50Ms: [],
    p99Ms: [],
    maxPerSecond: 0,
    failed: 0,
  }));
  const cluster = await startRedisCluster(3, { replicas: 1 });
  try {
    for (let round = 0; round < rounds; round++)
      for (const run of round % 2 === 0 ? acked : [...acked].reverse()) {
        const result = await runLoad(cluster.nodesEnv, {
          prefix: `bench-ack-${run.replicas}-${round}-`,
          count: String(rate * seconds),
          rate: String(rate),
          "ack-replicas": String(run.replicas),
        });
        run.p50Ms.push(result.latencyMs.p50);
        run.p99Ms.push(result.latencyMs.p99);
        run.failed += result.failed;
        progress(
          `failover: ${run.replicas} replica(s), round ${round + 1}: p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms`,
        );
      }
    for (const run of acked) {
      const result = await runLoad(cluster.nodesEnv, {
        prefix: `bench-ack-max-${run.replicas}-`,
        count: String(options.maxChanges),
        "ack-replicas": String(run.replicas),
      });
      run.maxPerSecond = result.changes / result.seconds;
      run.failed += result.failed;
      progress(
        `failover: ${run.replicas} replica(s): ${run.maxPerSecond.toFixed(0)} changes/s at most`,
      );
    }
  } finally {
    await cluster.stop();
  }

  const outcomes: FailoverOutcome[] = [];
  for (let kill = 0; kill < kills; kill++) {
    const rig = await startFailoverRig();
    try {
      const outcome = await killMasterUnderLoad(rig, { orders });
      outcomes.push(outcome);
      progress(
        `failover: kill ${kill + 1}: promoted after ${outcome.promotedMs} ms, ${outcome.droppedPings} pings dropped, ${outcome.lost} of ${outcome.acked} acknowledged changes lost`,
      );
    } finally {
      await rig.stop();
    }
  }
  const { progress: _, ...rest } = options;
  return { options: rest, acked, kills: outcomes };
}
