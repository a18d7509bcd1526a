// `./edge token -- --role rider --sub r1 --city london`: prints a development JWT.

import { exitWithUsage, intFlag, parseCommandLine } from "../config/command-line";
import { readOptionalString } from "../config/env";
import { devSecretFile, readDevSecret, shownPath } from "./dev-secret";
import { isRole, ROLES } from "./identity";
import { mintToken } from "./mint-token";

const secretFile = devSecretFile(process.env);
const spec = {
  usage: "./edge token -- --role <role> --sub <id> [--city <city>] [--ttl <seconds>]",
  summary:
    "Prints a development JWT (HS256) that the gateway, the ingest and the tracking nodes accept.",
  flags: {
    role: { default: "customer", help: `one of ${ROLES.join(", ")}` },
    sub: { help: "the caller's id (rider, customer, ... id); required" },
    city: { help: "the rider's city (required for riders), e.g. london" },
    ttl: { default: "86400", help: "lifetime in seconds" },
  },
  notes: [
    "The secret: JWT_SECRET when set, else the one `./edge demo` keeps in",
    `${shownPath(secretFile)} (DEV_JWT_SECRET_FILE), so tokens work with a running demo as they are.`,
    "JWT_ISSUER and JWT_AUDIENCE, when set, go into the token.",
  ].join("\n"),
};

const flags = parseCommandLine(spec, Bun.argv.slice(2));
if (!isRole(flags.role)) exitWithUsage(spec, `--role must be one of ${ROLES.join(", ")}`);
if (!flags.sub) exitWithUsage(spec, "--sub is required");
if (flags.role === "rider" && !flags.city) exitWithUsage(spec, "--city is required for riders");
const ttlSeconds = intFlag(spec, "ttl", flags.ttl, { min: 1, max: 31_536_000 });

const fromEnv = readOptionalString(process.env, "JWT_SECRET");
const secret = fromEnv ?? readDevSecret(secretFile);
if (!secret) {
  console.error(
    [
      "error: no secret to sign with. Either:",
      `  - start the demo once (\`./edge demo\`): it keeps its secret in ${shownPath(secretFile)}, which this command reads; or`,
      "  - export JWT_SECRET=<the secret your gateway and nodes run with> (at least 32 characters).",
    ].join("\n"),
  );
  process.exit(2);
}
if (secret.length < 32) exitWithUsage(spec, "JWT_SECRET must be at least 32 characters");
if (!fromEnv) console.error(`(signed with the demo's secret from ${shownPath(secretFile)})`);

console.log(
  await mintToken(secret, {
    sub: flags.sub,
    role: flags.role,
    city: flags.city,
    ttlSeconds,
    issuer: readOptionalString(process.env, "JWT_ISSUER"),
    audience: readOptionalString(process.env, "JWT_AUDIENCE"),
  }),
);
