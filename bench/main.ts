// `bun run bench [-- --streams 2000 --seconds 10 --rate 20000]`: runs the
// benchmarks and writes bench/RESULTS.md. Parts: ingest (more as tiers land).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ingestReport } from "./ingest/report";
import { runIngestBench } from "./ingest/run-ingest-bench";
import { machineDescription } from "./support/process-stats";
import { writeResultsSection } from "./support/results-file";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "2000" },
    seconds: { type: "string", default: "10" },
    rate: { type: "string", default: "20000" },
    out: { type: "string", default: join(import.meta.dir, "RESULTS.md") },
  },
});
const progress = (line: string) => console.error(`[bench] ${line}`);
const command = `bun run bench -- --streams ${values.streams} --seconds ${values.seconds} --rate ${values.rate}`;

const ingest = await runIngestBench({
  streams: Number(values.streams),
  seconds: Number(values.seconds),
  latencyRate: Number(values.rate),
  progress,
});
writeResultsSection(
  values.out ?? "",
  "Ingest",
  ingestReport(ingest, command, machineDescription()),
);
progress(`wrote ${values.out}`);
