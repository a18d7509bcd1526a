import { onShutdown } from "../core/lifecycle/shutdown";
import { createLogger } from "../core/observability/logger";
import { loadIngestConfig } from "./config";
import { startIngest } from "./ingest-app";

const logger = createLogger("ingest");
const app = await startIngest(loadIngestConfig(process.env), logger);
onShutdown(logger, () => app.drain());
