import { runMain } from "../core/lifecycle/run-main";
import { loadGatewayConfig } from "./config";
import { startGateway } from "./gateway-app";

await runMain("gateway", (logger) => startGateway(loadGatewayConfig(process.env), logger));
