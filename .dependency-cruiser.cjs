/**
 * Dependencies point inward: tiers import core and proto/gen, never each
 * other; core imports no tier; the client libraries (clients/) import only
 * core and proto/gen (the gateway's live map bundles them, the demo runs them).
 */
const TIERS = ["gateway", "location-ingest", "tracking"];
const NOT_FOR_TIERS = ["demo", "bench", "test"];

module.exports = {
  forbidden: [
    { name: "no-cycles", severity: "error", from: {}, to: { circular: true } },
    {
      name: "core-imports-no-tier",
      severity: "error",
      from: { path: "^core/" },
      to: { path: `^(${[...TIERS, ...NOT_FOR_TIERS, "clients"].join("|")})/` },
    },
    {
      name: "clients-import-only-core",
      severity: "error",
      from: { path: "^clients/" },
      to: { path: `^(${[...TIERS, ...NOT_FOR_TIERS].join("|")})/` },
    },
    ...TIERS.map((tier) => ({
      name: `${tier}-imports-no-other-tier`,
      severity: "error",
      from: { path: `^${tier}/` },
      to: {
        path: `^(${[...TIERS.filter((other) => other !== tier), ...NOT_FOR_TIERS].join("|")})/`,
      },
    })),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    exclude: { path: "\\.test\\.ts$" },
  },
};
