import type { Logger } from "pino";
import { settleWithin } from "../../../core/lifecycle/settle-within";
import { DRAIN_STEP_WAIT_MS } from "../../../core/lifecycle/shutdown";
import type { RedisConnection } from "../../../core/redis/client";
import { keys } from "../../../core/redis/keys";
import { holdLease, processHolder, releaseLease } from "../../../core/redis/leases";
import type { IngestMetrics } from "../../metrics";
import type { ExternalLocationLog, LocationEntry } from "./location-log";
import type { LocationSpill } from "./location-spill";

/** Spilled records read, produced and deleted per step. */
const REPLAY_BATCH = 1_000;

export interface LocationReplay {
  /** Stops the passes and gives back the leases this node holds (waiting DRAIN_STEP_WAIT_MS at most for both). */
  stop(): Promise<void>;
}

/**
 * Sends spilled location records (location-spill.ts) on to Kafka once it
 * takes them again. Every ingest node runs a pass every fifth of the lease:
 * it counts each city's spill (the backlog gauge, and what tells the node's
 * live records to wait behind spilled ones), and for a city with
 * records takes the city's replay lease (`location-spill-lease:{city}`,
 * hold-lease.lua, the outbox relay's lease), so one node replays a city at
 * a time. It reads the spill from its head, produces the records in that
 * order with the rider as key (so a rider's records keep their order in its
 * partition), and only after Kafka's acknowledgement deletes them, fenced
 * by the lease (ack-spilled-locations.lua). At least once: a replayer that
 * dies or pauses past its lease between produce and delete leaves records a
 * successor sends again, duplicates a consumer folds by rider and seq.
 */
export function startLocationReplay(options: {
  connection: RedisConnection;
  log: Pick<ExternalLocationLog, "produce">;
  /** This node's spill: told what the count found, so live records wait behind spilled ones. */
  spill: Pick<LocationSpill, "mark" | "counted">;
  nodeId: string;
  leaseMs: number;
  metrics: Pick<IngestMetrics, "logReplayed" | "logSpillBacklog">;
  logger: Logger;
  now?: () => number;
}): LocationReplay {
  const { connection, log, spill, nodeId, leaseMs, metrics, logger, now = Date.now } = options;
  const everyMs = Math.max(100, Math.floor(leaseMs / 5));
  // Per process, so two nodes given one INGEST_NODE_ID never share a city's lease.
  const holder = processHolder(nodeId);
  const leased = new Set<string>();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let failing = false;

  async function backlogs(): Promise<Map<string, number>> {
    const { client } = connection;
    const mark = spill.mark();
    const cities = await client.smembers(keys.cities());
    const lengths = await Promise.all(cities.map((city) => client.xlen(keys.locationSpill(city))));
    const total = lengths.reduce((sum, n) => sum + n, 0);
    metrics.logSpillBacklog.set(total);
    spill.counted(total, mark);
    return new Map(cities.map((city, i) => [city, lengths[i] ?? 0]));
  }

  /** Replays one city from the head of its spill while the lease has time left (a failed produce throws). */
  async function replayCity(city: string, leaseUntil: number): Promise<void> {
    const { client } = connection;
    const stream = keys.locationSpill(city);
    const lease = keys.locationSpillLease(city);
    const read = (after: string) => {
      const reading = client.xrangeBuffer(stream, after, "+", "COUNT", REPLAY_BATCH);
      // A read left behind (the lease lost, a failed produce) must not end the process if it fails.
      reading.catch(() => undefined);
      return reading;
    };
    // The next batch is read while this one is produced (entries go only after Kafka's ack).
    let next = read("-");
    // Leave room for the next pass to renew the lease before it runs out.
    while (!stopped && now() < leaseUntil - 2 * everyMs) {
      const entries = await next;
      const lastId = entries.at(-1)?.[0];
      if (!lastId) return;
      next = read(`(${lastId.toString()}`);
      const records: LocationEntry[] = entries.map(([, fields]) => spilledEntry(city, fields));
      await log.produce(records);
      const ids = entries.map(([id]) => id.toString());
      const deleted = Number(await client.ackSpilledLocations(lease, stream, holder, ...ids));
      if (deleted < 0) {
        leased.delete(city);
        logger.warn(
          { city, records: ids.length },
          "location replay: lease lost mid-batch (records may be sent twice)",
        );
        return;
      }
      metrics.logReplayed.inc(records.length);
    }
  }

  /** One pass over the cities; true when it replayed something (the next pass follows at once). */
  async function pass(): Promise<boolean> {
    if (!connection.isReady()) {
      // Spilled records are out of reach: live ones go on rather than overflow behind them
      // (order is given up for the outage, nothing is lost).
      spill.counted(0, spill.mark());
      return false;
    }
    const cities = await backlogs();
    let replayed = false;
    for (const [city, backlog] of cities) {
      if (stopped) break;
      if (backlog === 0) {
        if (leased.delete(city))
          await releaseLease(connection.client, keys.locationSpillLease(city), holder);
        continue;
      }
      const startedAt = now();
      const outcome = await holdLease(
        connection.client,
        keys.locationSpillLease(city),
        holder,
        leaseMs,
      );
      if (outcome === "held") continue;
      if (outcome === "taken")
        logger.info({ city, backlog }, "location replay: replaying spilled records");
      leased.add(city);
      await replayCity(city, startedAt + leaseMs);
      replayed = true;
    }
    return replayed;
  }

  // A pass that replayed is followed at once: to go on with what is left (renewing the
  // lease), or to count the spills empty so that live records flow again.
  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass()
        .then((replayed) => {
          failing = false;
          schedule(replayed ? 0 : everyMs);
        })
        .catch((error) => {
          // Once per outage (Kafka or Redis away), not once per pass.
          if (!failing) logger.warn({ err: error }, "location replay pass failed; retrying");
          failing = true;
          schedule(everyMs);
        });
    }, delayMs);
  }
  schedule(0);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      // With Redis or Kafka hanging the pass is left: it deletes only what Kafka acked, and
      // the leases lapse by themselves after KAFKA_REPLAY_LEASE_MS (giving them back only
      // lets another node go on at once).
      const stopping = (async () => {
        await running;
        await Promise.all(
          [...leased].map((city) =>
            releaseLease(connection.client, keys.locationSpillLease(city), holder).catch(
              () => false,
            ),
          ),
        );
      })();
      await settleWithin(stopping, DRAIN_STEP_WAIT_MS, undefined);
    },
  };
}

/** A spill entry (fields rider, at, record) as the log's entry. */
function spilledEntry(city: string, fields: Buffer[]): LocationEntry {
  let riderId = "";
  let recordedAtMs = 0;
  let record: Uint8Array = new Uint8Array();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]?.toString();
    const value = fields[i + 1] as Buffer;
    if (name === "rider") riderId = value.toString();
    else if (name === "at") recordedAtMs = Number(value.toString());
    else if (name === "record") record = value;
  }
  return { riderId, city, recordedAtMs, record };
}
