import { runMain } from "../core/lifecycle/run-main";
import { loadIngestConfig } from "./config";
import { startIngest } from "./ingest-app";

await runMain("ingest", (logger) => startIngest(loadIngestConfig(process.env), logger));
