// docker/compose.yaml is checked for what production needs (no Docker engine
// runs here; docker/README.md says what was and was not run). The balancer's
// config is run for real in nginx-routing.test.ts, Prometheus's files with
// promtool in prometheus.test.ts; this file checks that the three agree
// with compose about services, ports and node ids.
import { expect, test } from "bun:test";

interface Service {
  build?: { target?: string };
  image?: string;
  environment?: Record<string, string | number>;
  command?: string[] | string;
  ports?: string[];
  volumes?: string[];
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
  ulimits?: { nofile?: { soft: number; hard: number } };
}

const compose = Bun.YAML.parse(await Bun.file(`${import.meta.dir}/compose.yaml`).text()) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const nginx = await Bun.file(`${import.meta.dir}/nginx.conf`).text();
const prometheus = await Bun.file(`${import.meta.dir}/prometheus/prometheus.yml`).text();
const dockerfile = await Bun.file(`${import.meta.dir}/Dockerfile`).text();
const tiers = Object.keys(services).filter((name) => /^(gateway|ingest|tracking)-\d$/.test(name));
const env = (name: string) => services[name]?.environment ?? {};

test("the production shape: every service, each tier from its Dockerfile target", () => {
  expect(Object.keys(services).sort()).toEqual(
    [
      ...[1, 2, 3, 4, 5, 6].map((i) => `redis-${i}`),
      "redis-cluster-init",
      "kafka-1",
      "kafka-2",
      "kafka-3",
      "kafka-init",
      "gateway-1",
      "gateway-2",
      "ingest-1",
      "ingest-2",
      "tracking-1",
      "tracking-2",
      "tracking-3",
      "upstream",
      "lb",
      "prometheus",
    ].sort(),
  );
  for (const name of tiers) {
    expect(services[name]?.build?.target).toBe(name.split("-")[0] as string);
    expect(String(env(name).REDIS_CLUSTER_NODES).split(",")).toHaveLength(6);
    expect(env(name).KAFKA_BROKERS).toBe("kafka-1:9092,kafka-2:9092,kafka-3:9092");
    expect(env(name).BIND_HOST).toBe("0.0.0.0");
    // Tiers start once the cluster and the topics exist.
    expect(services[name]?.depends_on?.["redis-cluster-init"]?.condition).toBe(
      "service_completed_successfully",
    );
    expect(services[name]?.depends_on?.["kafka-init"]?.condition).toBe(
      "service_completed_successfully",
    );
  }
  expect(services.lb?.build?.target).toBe("lb");
});

test("Kafka: three KRaft brokers, replication factor 3, min.insync.replicas 2, topics created with their partitions", () => {
  const brokers = ["kafka-1", "kafka-2", "kafka-3"];
  expect(new Set(brokers.map((name) => env(name).KAFKA_NODE_ID)).size).toBe(3);
  for (const name of brokers) {
    const e = env(name);
    expect(e.KAFKA_PROCESS_ROLES).toBe("broker,controller");
    expect(e.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe("1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093");
    expect(e.KAFKA_ADVERTISED_LISTENERS).toBe(`PLAINTEXT://${name}:9092`);
    expect(Number(e.KAFKA_DEFAULT_REPLICATION_FACTOR)).toBe(3);
    expect(Number(e.KAFKA_MIN_INSYNC_REPLICAS)).toBe(2);
    expect(Number(e.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR)).toBe(3);
    expect(e.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe("false");
    expect(e.KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE).toBe("false");
    expect(services[name]?.volumes).toEqual([`${name}-data:${e.KAFKA_LOG_DIRS}`]);
  }
});

test("kafka-init's script creates both topics with their partitions, RF 3 and min.insync.replicas 2", async () => {
  // Run the service's shell script as compose would (after its $$ escapes),
  // with kafka-topics.sh replaced by a stub that prints its arguments.
  const [command = ""] = (services["kafka-init"]?.command as string[] | undefined) ?? [];
  const script = command
    .replaceAll("$$", "$")
    .replace("/opt/kafka/bin/kafka-topics.sh", "echo kafka-topics.sh");
  const run = Bun.spawn(["sh", "-c", script], {
    env: { RIDER_LOCATIONS_PARTITIONS: "24", ORDER_EVENTS_PARTITIONS: "12" },
    stdout: "pipe",
  });
  const calls = (await new Response(run.stdout).text()).trim().split("\n");
  expect(await run.exited).toBe(0);
  const common =
    "--bootstrap-server kafka-1:9092,kafka-2:9092,kafka-3:9092 --create --if-not-exists";
  const settings = "--replication-factor 3 --config min.insync.replicas=2";
  expect(calls).toEqual([
    `kafka-topics.sh ${common} --topic rider-locations --partitions 24 ${settings} --config retention.ms=604800000`,
    `kafka-topics.sh ${common} --topic order-events --partitions 12 ${settings} --config retention.ms=1209600000`,
  ]);
  // The defaults compose passes when the operator sets nothing.
  const dollar = "$";
  expect(env("kafka-init")).toEqual({
    RIDER_LOCATIONS_PARTITIONS: `${dollar}{RIDER_LOCATIONS_PARTITIONS:-24}`,
    ORDER_EVENTS_PARTITIONS: `${dollar}{ORDER_EVENTS_PARTITIONS:-12}`,
  });
});

test("state on volumes; restart policies and resource limits on every long-running service", () => {
  for (const name of [1, 2, 3, 4, 5, 6].map((i) => `redis-${i}`))
    expect(services[name]?.volumes).toEqual([`${name}-data:/data`]);
  for (const [name, service] of Object.entries(services)) {
    for (const volume of service.volumes ?? []) {
      const source = volume.split(":")[0] as string;
      if (!/^[./$]/.test(source)) expect(Object.keys(compose.volumes)).toContain(source);
    }
    if (name.endsWith("-init")) {
      expect(service.restart).toBe("no");
      continue;
    }
    expect({ name, restart: service.restart }).toEqual({ name, restart: "unless-stopped" });
    if (name === "upstream") continue;
    expect({ name, cpus: Boolean(service.deploy?.resources?.limits?.cpus) }).toEqual({
      name,
      cpus: true,
    });
    expect({ name, memory: Boolean(service.deploy?.resources?.limits?.memory) }).toEqual({
      name,
      memory: true,
    });
  }
  // Sockets: every ingest connection, tracking socket and balancer pair is a descriptor.
  for (const name of [...tiers, "lb"])
    expect(services[name]?.ulimits?.nofile?.soft).toBeGreaterThanOrEqual(65536);
});

test("only the balancer is public; every tracking node's public URL is the balancer's route for it", () => {
  for (const [name, service] of Object.entries(services)) {
    if (name === "lb") expect(service.ports?.sort()).toEqual(["443:443", "80:80"]);
    else if (name === "prometheus") expect(service.ports).toEqual(["127.0.0.1:9090:9090"]);
    else expect({ name, ports: service.ports }).toEqual({ name, ports: undefined });
  }
  for (const name of tiers.filter((n) => n.startsWith("tracking-"))) {
    const id = String(env(name).TRACKING_NODE_ID);
    expect(env(name).TRACKING_PUBLIC_URL).toBe(
      `\${EDGE_PUBLIC_WS_URL:-wss://localhost}/tracking/${id}`,
    );
    // nginx maps the id to an upstream holding this very service.
    const upstream = new RegExp(`\\n\\s+${id} (tracking_${id});`).exec(nginx)?.[1];
    expect(upstream).toBe(`tracking_${id}`);
    expect(nginx).toMatch(new RegExp(`upstream ${upstream} \\{\\s+server ${name}:8090;`));
    expect(nginx).toContain(`server ${name}:8090 max_fails`);
  }
  // The ring's clock is the same on nodes and gateways.
  for (const name of tiers)
    expect([env(name).TRACKING_RING_REFRESH_MS, env(name).TRACKING_NODE_TTL_MS]).toEqual([
      1000, 5000,
    ]);
});

test("the gateways, tracking nodes and ingest nodes trust the address nginx appends on their routes; nginx reaches every gateway and ingest", () => {
  for (const name of ["gateway-1", "gateway-2"]) {
    expect(env(name).GATEWAY_CLIENT_ADDRESS_HEADER).toBe("X-Forwarded-For");
    expect(nginx).toContain(`server ${name}:8080 `);
  }
  for (const name of ["tracking-1", "tracking-2", "tracking-3"])
    expect(env(name).TRACKING_CLIENT_ADDRESS_HEADER).toBe("X-Forwarded-For");
  expect(nginx).toContain("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;");
  // The ingest's gRPC route sets its own headers (it inherits none of proxy_set_header's).
  expect(nginx).toContain("grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;");
  for (const name of ["ingest-1", "ingest-2"]) {
    expect(env(name).INGEST_CLIENT_ADDRESS_HEADER).toBe("X-Forwarded-For");
    expect(nginx).toContain(`server ${name}:8081 `);
    expect(nginx).toContain(`server ${name}:8082 `);
  }
});

test("Prometheus scrapes every tier service on its metrics port", () => {
  const ports: Record<string, number> = { gateway: 8080, ingest: 8082, tracking: 8090 };
  for (const name of tiers)
    expect(prometheus).toContain(`${name}:${ports[name.split("-")[0] as string]}`);
  expect(services.prometheus?.volumes).toContain("./prometheus:/etc/prometheus:ro");
});

test("each tier's image runs as the non-root bun user with a health check; the balancer is Debian's nginx", () => {
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
  const lb = dockerfile.split(/^FROM /m).find((part) => part.includes(" AS lb")) ?? "";
  expect(lb).toStartWith("debian:bookworm-slim AS lb");
  expect(lb).toContain("apt-get install -y --no-install-recommends nginx");
  expect(lb).toContain("HEALTHCHECK");
});

/**
 * Compose's interpolation of one value, as documented for `${VAR:-default}`
 * and `${VAR:?error}` (empty counts as unset in both), defaults nested.
 */
function interpolate(value: string, shell: Record<string, string>): string {
  const at = value.indexOf("${");
  if (at < 0) return value;
  let depth = 0;
  let end = at;
  for (; end < value.length; end += 1) {
    if (value.startsWith("${", end)) depth += 1;
    else if (value[end] === "}" && --depth === 0) break;
  }
  const [, name, operator, rest] = /^([A-Z0-9_]+)(?::([-?]))?(.*)$/s.exec(
    value.slice(at + 2, end),
  ) as unknown as [string, string, string | undefined, string];
  let replaced = shell[name] ?? "";
  if (replaced === "" && operator === "-") replaced = interpolate(rest, shell);
  if (replaced === "" && operator === "?") throw new Error(`${name}: ${rest}`);
  return value.slice(0, at) + replaced + interpolate(value.slice(end + 1), shell);
}

test("auth: compose starts with either JWT_SECRET or a JWKS, and refuses neither before any tier runs", async () => {
  const { loadAuthConfig } = await import("../core/config/shared-config");
  const raw = Bun.YAML.parse(await Bun.file(`${import.meta.dir}/compose.yaml`).text()) as Record<
    string,
    unknown
  >;
  // What each tier's container gets (environment values are interpolated strings).
  const tierAuth = (shell: Record<string, string>) => {
    for (const value of Object.values(raw)) {
      if (typeof value === "string") interpolate(value, shell); // top-level checks
    }
    return Object.fromEntries(
      tiers.map((name) => [
        name,
        loadAuthConfig(
          Object.fromEntries(
            Object.entries(env(name)).map(([key, value]) => [
              key,
              interpolate(String(value), shell),
            ]),
          ),
        ),
      ]),
    );
  };
  const secret = "s".repeat(40);
  for (const auth of Object.values(tierAuth({ JWT_SECRET: secret }))) {
    expect(auth.secret).toBe(secret);
    expect(auth.jwks).toBeUndefined();
  }
  const jwks = {
    JWT_JWKS_URL: "https://idp.example/.well-known/jwks.json",
    JWT_ISSUER: "https://idp.example/",
    JWT_AUDIENCE: "delivery-edge",
  };
  for (const auth of Object.values(tierAuth(jwks))) {
    expect(auth.secret).toBeUndefined();
    expect(auth.jwks?.url).toBe(jwks.JWT_JWKS_URL);
    expect([auth.issuer, auth.audience]).toEqual([jwks.JWT_ISSUER, jwks.JWT_AUDIENCE]);
  }
  // Neither: compose itself stops, naming both ways.
  expect(() => tierAuth({})).toThrow(/JWT_SECRET.*JWT_JWKS_URL|JWT_JWKS_URL.*JWT_SECRET/);
});
