import type { LoadRun } from "./load-run";
import { type ServerUnderTest, startFloor } from "./servers-under-test";

/**
 * One open-loop step of the floor (floor-server.ts), loaded right after the
 * ingest's step at the same rate: the bare floor, and where asked the floor
 * with bare pipelined Redis writes.
 */
export interface FloorStep {
  rate: number;
  run: LoadRun;
  withRedis?: LoadRun;
}

/**
 * The floor servers, started once for the whole curve (an idle floor costs
 * nothing while the ingest is loaded): `runAt(rate)` loads the bare floor,
 * and at `withRedisAt` rates the floor with Redis writes on `redisUrl`,
 * each with `load`, and keeps the step.
 */
export async function startFloorSteps(options: {
  redisUrl: string;
  withRedisAt: readonly number[];
  load: (server: ServerUnderTest, rate: number) => Promise<LoadRun>;
  report: (label: string, run: LoadRun) => void;
}) {
  const { redisUrl, withRedisAt, load, report } = options;
  const bare = await startFloor();
  const withRedis =
    withRedisAt.length === 0
      ? undefined
      : await startFloor(redisUrl).catch(async (error: unknown) => {
          await bare.stop();
          throw error;
        });
  const steps: FloorStep[] = [];
  return {
    steps,
    async runAt(rate: number): Promise<void> {
      const run = await load(bare, rate);
      report(`${bare.name}: open loop at ${rate}/s`, run);
      const step: FloorStep = { rate, run };
      if (withRedis && withRedisAt.includes(rate)) {
        step.withRedis = await load(withRedis, rate);
        report(`${withRedis.name}: open loop at ${rate}/s`, step.withRedis);
      }
      steps.push(step);
    },
    async stop(): Promise<void> {
      await Promise.all([bare.stop(), withRedis?.stop()]);
    },
  };
}
