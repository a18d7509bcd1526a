// `bun run bench [-- --only ingest|fanout|gateway|geo --seconds 10 ...]`: runs the
// benchmarks and writes bench/RESULTS.md, one section per part.
import { join } from "node:path";
import { exitWithUsage, intFlag, parseCommandLine } from "../core/config/command-line";
import { failoverReport } from "./failover/report";
import { runFailoverBench } from "./failover/run-failover-bench";
import { fanoutCharts, fanoutReport } from "./fanout/report";
import { runFanoutBench } from "./fanout/run-fanout-bench";
import { gatewayCharts, gatewayReport } from "./gateway/report";
import { gatewayBenchRuns, runGatewayBench } from "./gateway/run-gateway-bench";
import { geoSearchCharts, geoSearchReport } from "./geo/report";
import { runGeoSearchBench } from "./geo/run-geo-search-bench";
import { ingestCharts, ingestReport } from "./ingest/report";
import { runIngestBench } from "./ingest/run-ingest-bench";
import { liveMapReport } from "./live-map/report";
import { runLiveMapChurn } from "./live-map/run-live-map-churn";
import { replayReport } from "./location-replay/report";
import { runReplayBench } from "./location-replay/run-replay-bench";
import { outboxReport } from "./outbox/report";
import { runOutboxRelayBench } from "./outbox/run-outbox-relay-bench";
import { routingReport } from "./routing/report";
import { runRoutingBench } from "./routing/run-routing-bench";
import { writeCharts } from "./support/chart-files";
import { machineDescription } from "./support/process-stats";
import { createBenchProgress } from "./support/progress";
import { writeResultsSection } from "./support/results-file";

const spec = {
  usage:
    "./edge bench [-- --only ingest|fanout|gateway|geo|live-map|routing|outbox|failover|replay --seconds 10 ...]",
  summary:
    "Runs the benchmarks on this machine (own redis-server and tier processes on loopback)\nand rewrites their sections of bench/RESULTS.md. One at a time on a shared machine.",
  flags: {
    only: {
      help: "one part: ingest, fanout, gateway, geo, live-map, routing, outbox, failover or replay (default: all)",
    },
    seconds: { default: "10", help: "measured seconds per run" },
    streams: { default: "2000", help: "ingest: rider streams" },
    rates: {
      default: "5000,10000,20000,30000,40000",
      help: "ingest: pings/s of the open-loop steps (the latency curve), comma-separated",
    },
    "allocation-rate": {
      default: "10000",
      help: "ingest: pings/s of the run that counts heap bytes per ping",
    },
    "baseline-entry": {
      help: "ingest: the ingest as it was (another checkout's location-ingest/main.ts), measured in the same run for a before/after",
    },
    "pinned-rates": {
      default: "10000,20000",
      help: 'ingest: pings/s of the steps with the ingest alone on core 0, Redis and the load on core 1 (taskset), comma-separated; "none" to skip',
    },
    "floor-redis-rates": {
      default: "20000",
      help: 'ingest: pings/s (of --rates) at which the floor with Redis writes is loaded too, beside the bare floor at every step, comma-separated; "none" to skip',
    },
    "no-peer": {
      type: "boolean" as const,
      help: "ingest: skip the peer (a stock @grpc/grpc-js server on Node)",
    },
    orders: { default: "2500", help: "fan-out: watched orders" },
    "per-order": { default: "4", help: "fan-out: watchers per order" },
    "fanout-rate": { default: "5000", help: "fan-out: published events/s for the latency point" },
    "fanout-max-rate": {
      default: "30000",
      help: "fan-out: events/s offered for the throughput point",
    },
    "fanout-rounds": { default: "2", help: "fan-out: turns of the servers compared" },
    "status-rates": {
      default: "2500,5000,7500,10000,12500,15000",
      help: "gateway: offered rates (req/s) of the status latency curve",
    },
    "offer-rate": { default: "1000", help: "gateway: dispatch offers/s" },
    "breakdown-requests": {
      default: "20000",
      help: "gateway: requests per stage and round of the status read's in-process breakdown",
    },
    "geo-riders": { default: "50000", help: "geo: riders in the searched city" },
    "map-riders": { default: "300", help: "live-map: demo riders" },
    "map-seconds": { default: "60", help: "live-map: seconds of socket counting" },
    upgrades: { default: "1000", help: "routing: WebSocket upgrades per way in" },
    "outbox-rate": { default: "1000", help: "outbox: status changes/s for the lag run" },
    "unrelated-keys": { default: "1000000", help: "outbox: other keys in Redis (second run)" },
    "outbox-backlog": { default: "50000", help: "outbox: changes waiting for the drain run" },
    "outbox-rounds": { default: "2", help: "outbox: rounds at --outbox-rate per keyspace" },
    "ack-rate": { default: "500", help: "failover: order changes/s, with and without WAIT" },
    kills: { default: "3", help: "failover: masters killed (fresh cluster each)" },
    "spill-records": {
      default: "100000",
      help: "replay: location records waiting in a city's spill when the ingest starts",
    },
    out: { default: join(import.meta.dir, "RESULTS.md"), help: "the results file" },
  },
};
const values = parseCommandLine(spec, Bun.argv.slice(2));
if (
  values.only !== undefined &&
  ![
    "ingest",
    "fanout",
    "gateway",
    "geo",
    "live-map",
    "routing",
    "outbox",
    "failover",
    "replay",
  ].includes(values.only)
)
  exitWithUsage(
    spec,
    `--only must be ingest, fanout, gateway, geo, live-map, routing, outbox, failover or replay (got ${JSON.stringify(values.only)})`,
  );
const count = (name: keyof typeof spec.flags, min = 1) =>
  intFlag(spec, name, String(values[name]), { min });
const numbers = {
  seconds: count("seconds"),
  streams: count("streams"),
  allocationRate: count("allocation-rate"),
  orders: count("orders"),
  perOrder: count("per-order"),
  fanoutRate: count("fanout-rate"),
  fanoutMaxRate: count("fanout-max-rate"),
  fanoutRounds: count("fanout-rounds"),
  offerRate: count("offer-rate"),
  breakdownRequests: count("breakdown-requests"),
  geoRiders: count("geo-riders"),
  mapRiders: count("map-riders"),
  mapSeconds: count("map-seconds"),
  upgrades: count("upgrades"),
  outboxRate: count("outbox-rate"),
  unrelatedKeys: count("unrelated-keys", 0),
  outboxBacklog: count("outbox-backlog"),
  outboxRounds: count("outbox-rounds"),
  ackRate: count("ack-rate"),
  kills: count("kills"),
  spillRecords: count("spill-records"),
};
const statusRates = values["status-rates"]
  .split(",")
  .map((rate) => intFlag(spec, "status-rates", rate, { min: 1 }));
const ingestRates = values.rates.split(",").map((rate) => intFlag(spec, "rates", rate, { min: 1 }));
const pinnedRates =
  values["pinned-rates"] === "none"
    ? []
    : values["pinned-rates"]
        .split(",")
        .map((rate) => intFlag(spec, "pinned-rates", rate, { min: 1 }));
const floorRedisRates =
  values["floor-redis-rates"] === "none"
    ? []
    : values["floor-redis-rates"]
        .split(",")
        .map((rate) => intFlag(spec, "floor-redis-rates", rate, { min: 1 }));
const out = values.out;
const seconds = numbers.seconds;
const runs = (part: string) => values.only === undefined || values.only === part;
// What each part expects to take (its runs and warm-ups, plus set-up): the progress line's estimate.
const progress = createBenchProgress(
  [
    {
      name: "ingest",
      // The ingest's allocation, closed-loop, Connect and curve runs, the baseline's three, then the peer's, and the raw ceiling;
      // the floor's steps (a 2 s warm-up each).
      seconds:
        (2 * ingestRates.length +
          pinnedRates.length +
          (values["no-peer"] ? 3 : 5) +
          (values["baseline-entry"] ? 3 : 0)) *
          (seconds + 5) +
        (ingestRates.length + floorRedisRates.length) * (seconds + 2) +
        60,
    },
    { name: "fanout", seconds: numbers.fanoutRounds * 4 * (2 * (seconds + 4) + 15) + 10 },
    { name: "gateway", seconds: gatewayBenchRuns({ statusRates }) * (seconds + 1) + 60 },
    { name: "geo", seconds: 40 },
    { name: "live-map", seconds: numbers.mapSeconds + 120 },
    { name: "routing", seconds: 60 },
    { name: "outbox", seconds: numbers.outboxRounds * 2 * (seconds + 5) + 60 },
    { name: "failover", seconds: 4 * (seconds + 3) + numbers.kills * 40 + 30 },
    { name: "replay", seconds: 20 + numbers.spillRecords / 5_000 },
  ].filter((part) => runs(part.name)),
);
const report = progress.report;

if (runs("ingest")) {
  const command = `bun run bench -- --only ingest --streams ${values.streams} --seconds ${seconds} --rates ${ingestRates.join(",")} --allocation-rate ${values["allocation-rate"]}${values["baseline-entry"] ? ` --baseline-entry ${values["baseline-entry"]}` : ""}${values["no-peer"] ? " --no-peer" : ""}${values["pinned-rates"] === spec.flags["pinned-rates"].default ? "" : ` --pinned-rates ${values["pinned-rates"]}`}${values["floor-redis-rates"] === spec.flags["floor-redis-rates"].default ? "" : ` --floor-redis-rates ${values["floor-redis-rates"]}`}`;
  progress.part("ingest");
  const result = await runIngestBench({
    streams: numbers.streams,
    seconds,
    rates: ingestRates,
    allocationRate: numbers.allocationRate,
    pinnedRates,
    floorRedisRates,
    ...(values["baseline-entry"] ? { baselineEntry: values["baseline-entry"] } : {}),
    peer: !values["no-peer"],
    progress: report,
  });
  const charts = writeCharts(out, ingestCharts(result));
  writeResultsSection(out, "Ingest", ingestReport(result, command, machineDescription()) + charts);
}
if (runs("fanout")) {
  const command = `bun run bench -- --only fanout --orders ${values.orders} --per-order ${values["per-order"]} --seconds ${seconds} --fanout-rate ${values["fanout-rate"]} --fanout-max-rate ${values["fanout-max-rate"]} --fanout-rounds ${values["fanout-rounds"]}`;
  progress.part("fanout");
  const result = await runFanoutBench({
    orders: numbers.orders,
    perOrder: numbers.perOrder,
    seconds,
    rate: numbers.fanoutRate,
    maxRate: numbers.fanoutMaxRate,
    rounds: numbers.fanoutRounds,
    progress: report,
  });
  const charts = writeCharts(out, fanoutCharts(result));
  writeResultsSection(out, "Fan-out", fanoutReport(result, command, machineDescription()) + charts);
}
if (runs("gateway")) {
  const command = `bun run bench -- --only gateway --seconds ${seconds} --status-rates ${statusRates.join(",")} --offer-rate ${values["offer-rate"]} --breakdown-requests ${values["breakdown-requests"]}`;
  progress.part("gateway");
  const result = await runGatewayBench({
    seconds,
    statusRates,
    offerRate: numbers.offerRate,
    breakdownRequests: numbers.breakdownRequests,
    progress: report,
  });
  const charts = writeCharts(out, gatewayCharts(result));
  writeResultsSection(
    out,
    "Gateway",
    gatewayReport(result, command, machineDescription()) + charts,
  );
}
if (runs("geo")) {
  const command = `bun run bench -- --only geo --geo-riders ${values["geo-riders"]}`;
  const options = {
    riders: numbers.geoRiders,
    spreadM: 15_000,
    radiiM: [1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 50_000],
    // The gateway's largest limit (DISPATCH_MAX_CANDIDATES, 50) × its over-fetch (3).
    count: 150,
    searches: 300,
  };
  progress.part("geo");
  const rows = await runGeoSearchBench({ ...options, progress: report });
  writeResultsSection(
    out,
    "Dispatch candidate search",
    geoSearchReport(rows, options, command, machineDescription()) +
      writeCharts(out, geoSearchCharts(rows)),
  );
}
if (runs("live-map")) {
  const command = `bun run bench -- --only live-map --map-riders ${numbers.mapRiders} --map-seconds ${numbers.mapSeconds}`;
  progress.part("live-map");
  const result = await runLiveMapChurn({
    riders: numbers.mapRiders,
    seconds: numbers.mapSeconds,
    progress: report,
  });
  writeResultsSection(
    out,
    "Live map socket churn",
    liveMapReport(result, command, machineDescription()),
  );
}
if (runs("routing")) {
  const command = `bun run bench -- --only routing --upgrades ${numbers.upgrades}`;
  const options = { upgrades: numbers.upgrades, concurrency: 10 };
  progress.part("routing");
  const result = await runRoutingBench({ ...options, progress: report });
  writeResultsSection(
    out,
    "Edge routing (the balancer and the ring)",
    routingReport(result, options, command, machineDescription()),
  );
}
if (runs("outbox")) {
  const command = `bun run bench -- --only outbox --seconds ${seconds} --outbox-rate ${values["outbox-rate"]} --unrelated-keys ${values["unrelated-keys"]} --outbox-backlog ${values["outbox-backlog"]} --outbox-rounds ${values["outbox-rounds"]}`;
  progress.part("outbox");
  const result = await runOutboxRelayBench({
    seconds,
    rate: numbers.outboxRate,
    unrelatedKeys: numbers.unrelatedKeys,
    backlog: numbers.outboxBacklog,
    rounds: numbers.outboxRounds,
    progress: report,
  });
  writeResultsSection(out, "Outbox relay", outboxReport(result, command, machineDescription()));
}
if (runs("failover")) {
  const command = `bun run bench -- --only failover --seconds ${seconds} --ack-rate ${values["ack-rate"]} --kills ${values.kills}`;
  progress.part("failover");
  const result = await runFailoverBench({
    seconds,
    rate: numbers.ackRate,
    rounds: 2,
    kills: numbers.kills,
    orders: 48,
    maxChanges: 20_000,
    progress: report,
  });
  writeResultsSection(
    out,
    "Redis Cluster failover",
    failoverReport(result, command, machineDescription()),
  );
}
if (runs("replay")) {
  const command = `bun run bench -- --only replay --spill-records ${values["spill-records"]}`;
  progress.part("replay");
  const result = await runReplayBench({
    records: numbers.spillRecords,
    riders: 2_000,
    progress: report,
  });
  writeResultsSection(
    out,
    "Location spill replay",
    replayReport(result, command, machineDescription()),
  );
}
// As Biome formats Markdown (the test command checks the repository's file): aligned tables.
const root = join(import.meta.dir, "..");
if (out.startsWith(`${root}/`))
  Bun.spawnSync([join(root, "node_modules", ".bin", "biome"), "format", "--write", out], {
    stdout: "ignore",
    stderr: "ignore",
  });
report(`wrote ${out}`);
progress.stop();
