// `./edge openapi:gen`: writes docs/openapi.json, the gateway's OpenAPI document
// with the default limits, from the schemas that validate its requests. The
// test suite checks that the file equals what a gateway serves.
import { join } from "node:path";
import { parseCommandLine } from "../core/config/command-line";
import { apiDocument } from "../gateway/api/api-document";
import { DISPATCH_DEFAULTS } from "../gateway/config";

const spec = {
  usage: "./edge openapi:gen",
  summary: "Writes docs/openapi.json from the gateway's route schemas (default limits).",
  flags: {},
};
parseCommandLine(spec, Bun.argv.slice(2));
const file = join(import.meta.dir, "..", "docs", "openapi.json");
await Bun.write(file, `${JSON.stringify(apiDocument(DISPATCH_DEFAULTS), null, 2)}\n`);
console.log(`wrote ${file}`);
