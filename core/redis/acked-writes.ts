import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { EdgeError } from "../errors/edge-error";
import type { ScriptCaller, ScriptPipeline } from "./scripts";

export interface AckedWriteOptions {
  /** Replicas that must have a write before it is acknowledged (0: the master's word is enough). */
  readonly replicas: number;
  /** How long WAIT may take. */
  readonly timeoutMs: number;
}

export interface AckedWrites {
  readonly replicas: number;
  /**
   * The longest one run() waits for replicas in all (0 without replicas):
   * a refused shard's probe, the write's WAIT and its resend after a MOVED.
   */
  readonly longestWaitMs: number;
  /**
   * Runs the one script `call` calls (writing `key`'s slot) and,
   * when replicas are required, WAIT on the same connection right after it.
   * `replicated` is false when fewer replicas had it in time: the change is
   * on the master but would not survive its failover, so callers must not
   * acknowledge it (see `notReplicated`). A shard whose last WAIT fell short
   * is refused without running anything; once a second one caller probes it
   * (WAIT after a read, so nothing is written) until its replicas are back.
   */
  run(
    key: string,
    call: (target: ScriptCaller) => unknown,
  ): Promise<{ result: unknown; replicated: boolean }>;
}

const REFUSE_AFTER_SHORT_WAIT_MS = 1_000;

/** WAITs one run() may send: the probe, the write's and the write's again after a MOVED. */
const WAITS_PER_RUN = 3;

const unconfirmedShard = () =>
  new EdgeError("unavailable", "the order's Redis shard has no replica in step");

/** The error for a change that ran but is not on enough replicas: the client must read before retrying. */
export function notReplicated(): EdgeError {
  return new EdgeError(
    "unavailable",
    "the change is not confirmed by a replica: read the order before retrying",
  );
}

/**
 * Writes that are acknowledged only once a replica has them. With replicas
 * required they go over their own connection (`client`), because WAIT
 * holds up every command behind it on its connection: reads and rate-limit
 * checks on the main connection never wait for a replica.
 */
export function createAckedWrites(
  client: (Redis | Cluster) & ScriptCaller,
  options: AckedWriteOptions,
  logger: Logger,
): AckedWrites {
  const { replicas, timeoutMs } = options;
  const refusedUntil = new Map<string, number>();
  const shardOf = (key: string) =>
    "slots" in client ? (client.slots[calculateSlot(key)]?.[0] ?? "unmapped") : "all";

  return {
    replicas,
    longestWaitMs: replicas === 0 ? 0 : WAITS_PER_RUN * timeoutMs,
    async run(key, call) {
      if (replicas === 0) return { result: await call(client), replicated: true };
      const shard = shardOf(key);
      const refused = refusedUntil.get(shard);
      if (refused !== undefined) {
        if (refused > Date.now()) throw unconfirmedShard();
        // One caller probes, without writing, whether the shard has its replicas again.
        refusedUntil.set(shard, Date.now() + REFUSE_AFTER_SHORT_WAIT_MS);
        const [, [probeError, inStep] = [null, 0]] =
          (await client.pipeline().exists(key).wait(replicas, timeoutMs).exec()) ?? [];
        if (probeError || Number(inStep) < replicas) throw unconfirmedShard();
        refusedUntil.delete(shard);
      }
      const send = async () => {
        const pipeline = client.pipeline() as ScriptPipeline;
        call(pipeline);
        pipeline.wait(replicas, timeoutMs);
        return (await pipeline.exec()) ?? [];
      };
      let [[error, result] = [null, undefined], [waitError, acked] = [null, 0]] = await send();
      // The slot moved (a replica was promoted): the node refused the script without running
      // it, so once the slot map is read again it can go to the new master.
      if (error && /^(MOVED|ASK) /.test(error.message) && "refreshSlotsCache" in client) {
        await new Promise<void>((resolve) => client.refreshSlotsCache(() => resolve()));
        [[error, result] = [null, undefined], [waitError, acked] = [null, 0]] = await send();
      }
      if (error) throw error;
      const replicated = !waitError && Number(acked) >= replicas;
      if (replicated) refusedUntil.delete(shard);
      else {
        if (!refusedUntil.has(shard))
          logger.warn({ shard, replicas, acked, timeoutMs }, "write not confirmed by its replicas");
        refusedUntil.set(shard, Date.now() + REFUSE_AFTER_SHORT_WAIT_MS);
      }
      return { result, replicated };
    },
  };
}
