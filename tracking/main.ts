import { runMain } from "../core/lifecycle/run-main";
import { loadTrackingConfig } from "./config";
import { startTracking } from "./tracking-app";

await runMain("tracking", (logger) => startTracking(loadTrackingConfig(process.env), logger));
