// `bun run token -- --role rider --sub r1 --city london`: prints a development JWT.
import { parseArgs } from "node:util";
import { ConfigError, readOptionalString } from "../config/env";
import { isRole } from "./identity";
import { mintToken } from "./mint-token";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "customer" },
    sub: { type: "string" },
    city: { type: "string" },
    ttl: { type: "string", default: "86400" },
  },
});

const secret = readOptionalString(process.env, "JWT_SECRET");
if (!secret) throw new ConfigError("JWT_SECRET", "is required to mint a token", undefined);
if (!isRole(values.role)) {
  console.error(`--role must be one of customer, rider, restaurant, dispatcher, ops`);
  process.exit(2);
}
if (!values.sub) {
  console.error("--sub is required");
  process.exit(2);
}
if (values.role === "rider" && !values.city) {
  console.error("--city is required for riders");
  process.exit(2);
}
console.log(
  await mintToken(secret, {
    sub: values.sub,
    role: values.role,
    city: values.city,
    ttlSeconds: Number(values.ttl),
    issuer: readOptionalString(process.env, "JWT_ISSUER"),
    audience: readOptionalString(process.env, "JWT_AUDIENCE"),
  }),
);
