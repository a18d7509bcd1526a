import { runMain } from "../core/lifecycle/run-main";
import { loadIngestConfig } from "./config";
import { startIngest } from "./ingest-app";
import { readOpenFileLimit } from "./open-file-limit";

await runMain("ingest", (logger) =>
  startIngest(loadIngestConfig(process.env, { openFileLimit: readOpenFileLimit() }), logger),
);
