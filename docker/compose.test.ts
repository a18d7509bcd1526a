import { expect, test } from "bun:test";

const compose = Bun.YAML.parse(await Bun.file(`${import.meta.dir}/compose.yaml`).text()) as {
  services: Record<
    string,
    { build?: { target?: string }; environment?: Record<string, string>; image?: string }
  >;
};
const nginx = await Bun.file(`${import.meta.dir}/nginx.conf`).text();
const dockerfile = await Bun.file(`${import.meta.dir}/Dockerfile`).text();

test("compose names every service of the production shape, each tier built from its target", () => {
  const names = Object.keys(compose.services);
  const expected = [
    ...[1, 2, 3, 4, 5, 6].map((i) => `redis-${i}`),
    "redis-cluster-init",
    "kafka",
    "gateway-1",
    "gateway-2",
    "ingest-1",
    "ingest-2",
    "tracking-1",
    "tracking-2",
    "tracking-3",
    "upstream",
    "lb",
  ];
  expect(names.sort()).toEqual(expected.sort());
  for (const name of names.filter((n) => /^(gateway|ingest|tracking)-/.test(n))) {
    const service = compose.services[name];
    expect(service?.build?.target).toBe(name.split("-")[0]);
    expect(service?.environment?.REDIS_CLUSTER_NODES?.split(",")).toHaveLength(6);
    expect(service?.environment?.KAFKA_BROKERS).toBe("kafka:9092");
  }
  const trackingIds = ["tracking-1", "tracking-2", "tracking-3"].map(
    (n) => compose.services[n]?.environment?.TRACKING_NODE_ID,
  );
  expect(new Set(trackingIds).size).toBe(3);
  expect(compose.services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe("broker,controller");
});

test("the load balancer reaches every node; the track route hashes the order id; the ingest gets h2c gRPC", () => {
  for (const node of [
    "gateway-1:8080",
    "gateway-2:8080",
    "ingest-1:8081",
    "ingest-2:8081",
    "tracking-1:8090",
    "tracking-2:8090",
    "tracking-3:8090",
  ]) {
    expect(nginx).toContain(`server ${node};`);
  }
  expect(nginx).toContain("hash $order_id consistent;");
  expect(nginx).toContain("grpc_pass grpc://ingest;");
  expect(nginx).toMatch(/listen 8081 http2;/);
});

test("each tier's image runs as the non-root bun user with a health check", () => {
  for (const target of ["gateway", "ingest", "tracking"]) {
    const stage =
      dockerfile.split(/^FROM /m).find((part) => part.startsWith(`base AS ${target}`)) ?? "";
    expect(stage).toContain("USER bun");
    expect(stage).toContain("HEALTHCHECK");
    expect(stage).toMatch(
      new RegExp(
        `CMD \\["bun", "(location-)?${target === "ingest" ? "ingest" : target}/main.ts"\\]`,
      ),
    );
  }
});
