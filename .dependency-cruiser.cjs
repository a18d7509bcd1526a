/** Dependencies point inward: tiers import core and proto/gen, never each other; core imports no tier. */
const TIERS = "^(gateway|location-ingest|tracking)/";
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "core-imports-no-tier",
      severity: "error",
      from: { path: "^core/" },
      to: { path: "^(gateway|location-ingest|tracking|demo|bench|test)/" },
    },
    {
      name: "tier-imports-no-other-tier",
      severity: "error",
      from: { path: "^(gateway)/" },
      to: { path: "^(location-ingest|tracking|demo)/" },
    },
    {
      name: "ingest-imports-no-other-tier",
      severity: "error",
      from: { path: "^(location-ingest)/" },
      to: { path: "^(gateway|tracking|demo)/" },
    },
    {
      name: "tracking-imports-no-other-tier",
      severity: "error",
      from: { path: "^(tracking)/" },
      to: { path: "^(gateway|location-ingest|demo)/" },
    },
    {
      name: "tiers-import-no-demo-or-tests",
      severity: "error",
      from: { path: TIERS },
      to: { path: "^(demo|bench|test)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    exclude: { path: "\\.test\\.ts$" },
  },
};
