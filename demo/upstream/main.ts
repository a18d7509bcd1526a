// `bun run upstream`: the stand-in order and search service on UPSTREAM_PORT (8070).
import { readPort } from "../../core/config/env";
import { createUpstreamFetch } from "./upstream-app";

const server = Bun.serve({
  port: readPort(process.env, "UPSTREAM_PORT", 8070),
  fetch: createUpstreamFetch(),
});
console.log(JSON.stringify({ msg: "upstream listening", port: server.port }));
