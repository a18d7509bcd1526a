// `bun run bench [-- --only ingest|fanout|gateway|geo --seconds 10 ...]`: runs the
// benchmarks and writes bench/RESULTS.md, one section per part.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fanoutReport } from "./fanout/report";
import { runFanoutBench } from "./fanout/run-fanout-bench";
import { gatewayReport } from "./gateway/report";
import { runGatewayBench } from "./gateway/run-gateway-bench";
import { geoSearchReport } from "./geo/report";
import { runGeoSearchBench } from "./geo/run-geo-search-bench";
import { ingestReport } from "./ingest/report";
import { runIngestBench } from "./ingest/run-ingest-bench";
import { machineDescription } from "./support/process-stats";
import { writeResultsSection } from "./support/results-file";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    seconds: { type: "string", default: "10" },
    streams: { type: "string", default: "2000" },
    rate: { type: "string", default: "20000" },
    orders: { type: "string", default: "2500" },
    "per-order": { type: "string", default: "4" },
    "fanout-rate": { type: "string", default: "5000" },
    "status-rate": { type: "string", default: "10000" },
    "offer-rate": { type: "string", default: "1000" },
    "geo-riders": { type: "string", default: "50000" },
    out: { type: "string", default: join(import.meta.dir, "RESULTS.md") },
  },
});
const progress = (line: string) => console.error(`[bench] ${line}`);
const out = values.out ?? "";
const seconds = Number(values.seconds);
const runs = (part: string) => values.only === undefined || values.only === part;

if (runs("ingest")) {
  const command = `bun run bench -- --only ingest --streams ${values.streams} --seconds ${seconds} --rate ${values.rate}`;
  const result = await runIngestBench({
    streams: Number(values.streams),
    seconds,
    latencyRate: Number(values.rate),
    progress,
  });
  writeResultsSection(out, "Ingest", ingestReport(result, command, machineDescription()));
}
if (runs("fanout")) {
  const command = `bun run bench -- --only fanout --orders ${values.orders} --per-order ${values["per-order"]} --seconds ${seconds} --fanout-rate ${values["fanout-rate"]}`;
  const result = await runFanoutBench({
    orders: Number(values.orders),
    perOrder: Number(values["per-order"]),
    seconds,
    rate: Number(values["fanout-rate"]),
    progress,
  });
  writeResultsSection(out, "Fan-out", fanoutReport(result, command, machineDescription()));
}
if (runs("gateway")) {
  const command = `bun run bench -- --only gateway --seconds ${seconds} --status-rate ${values["status-rate"]} --offer-rate ${values["offer-rate"]}`;
  const result = await runGatewayBench({
    seconds,
    statusRate: Number(values["status-rate"]),
    offerRate: Number(values["offer-rate"]),
    progress,
  });
  writeResultsSection(out, "Gateway", gatewayReport(result, command, machineDescription()));
}
if (runs("geo")) {
  const command = `bun run bench -- --only geo --geo-riders ${values["geo-riders"]}`;
  const options = {
    riders: Number(values["geo-riders"]),
    spreadM: 15_000,
    radiiM: [1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 50_000],
    // The gateway's largest limit (DISPATCH_MAX_CANDIDATES, 50) × its over-fetch (3).
    count: 150,
    searches: 300,
  };
  const rows = await runGeoSearchBench({ ...options, progress });
  writeResultsSection(
    out,
    "Dispatch candidate search",
    geoSearchReport(rows, options, command, machineDescription()),
  );
}
progress(`wrote ${out}`);
