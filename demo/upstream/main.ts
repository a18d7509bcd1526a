// `bun run upstream`: the stand-in order and search service on UPSTREAM_PORT (8070).
import { parseCommandLine } from "../../core/config/command-line";
import { readPort } from "../../core/config/env";
import { readBindHost } from "../../core/config/shared-config";
import { createUpstreamFetch } from "./upstream-app";

parseCommandLine(
  {
    usage: "./edge upstream",
    summary:
      "Runs the stand-in order and search service (fixture restaurants in london, paris, berlin).",
    flags: {},
    notes: "environment: UPSTREAM_PORT (8070), BIND_HOST (127.0.0.1)",
  },
  Bun.argv.slice(2),
);
const server = Bun.serve({
  hostname: readBindHost(process.env),
  port: readPort(process.env, "UPSTREAM_PORT", 8070),
  fetch: createUpstreamFetch(),
});
console.log(JSON.stringify({ msg: "upstream listening", port: server.port }));
