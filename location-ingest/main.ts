import { restartWithGcSettings } from "./gc-settings";

// JavaScriptCore reads its collector options only at start: restart in place
// with them (gc-settings.ts) before the rest of the ingest is even loaded.
restartWithGcSettings();

const [{ runMain }, { loadIngestConfig }, { startIngest }, { readOpenFileLimit }] =
  await Promise.all([
    import("../core/lifecycle/run-main"),
    import("./config"),
    import("./ingest-app"),
    import("./open-file-limit"),
  ]);

await runMain("ingest", (logger) =>
  startIngest(loadIngestConfig(process.env, { openFileLimit: readOpenFileLimit() }), logger),
);
