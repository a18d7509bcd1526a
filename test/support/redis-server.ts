import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canListen } from "../../demo/child-processes";

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** The current redis-server process id (changes on restart). */
  readonly pid: number;
  /** Graceful stop (SIGTERM); removes the data directory. */
  stop(): Promise<void>;
  /** Crash (SIGKILL), keeping the port for restart(). */
  kill(): Promise<void>;
  /** Starts again on the same port after kill(). */
  restart(): Promise<void>;
}

export interface RedisCluster {
  /** Every node, masters and replicas, as started (roles change on failover). */
  readonly nodes: { host: string; port: number }[];
  /** The REDIS_CLUSTER_NODES form: host:port,host:port,... */
  readonly nodesEnv: string;
  /** The port of the master serving `key`'s slot right now; rejects while none does (failing over). */
  masterOf(key: string): Promise<number>;
  /** The ports of the live replicas of the master on `port`. */
  replicasOf(port: number): Promise<number[]>;
  /** Crashes one node (SIGKILL), keeping its port and cluster config for restart(). */
  kill(port: number): Promise<void>;
  /** Starts a killed node again, empty (no persistence): it rejoins, as a replica if its slots moved. */
  restart(port: number): Promise<void>;
  /** Freezes one node (SIGSTOP): it stops answering, replication included, until resume(). */
  pause(port: number): void;
  resume(port: number): void;
  /** Resolves once every live node reports cluster_state:ok with all slots served. */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Replicas per master (default 0). */
  replicas?: number;
  /** cluster-node-timeout: how long a silent master takes to be failed over (default 2000). */
  nodeTimeoutMs?: number;
}

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 5_000;
const living = new Set<ChildProcess>();
// Last resort if a test run dies before its afterAll: no redis-server outlives it.
process.once("exit", () => {
  for (const child of living) child.kill("SIGKILL");
});

/** Linux's default start of the ephemeral range, for when /proc does not say. */
const EPHEMERAL_LOW_DEFAULT = 32_768;
/** freePort's picks: from here up to the ephemeral range. */
const PICK_LOW = 16_384;
const PICK_ATTEMPTS = 100;

/**
 * A port free on 127.0.0.1 now, picked at random below the kernel's ephemeral
 * range (ip_local_port_range). The kernel hands out none of those ports by
 * itself, neither to a listener on port 0 nor as an outgoing connection's
 * local port: between this pick and its user's bind, another process takes
 * it only by asking for that very number. Picked by the kernel (port 0) it
 * came from that range, and on a loaded CI machine another process's
 * connection or port-0 listener sometimes had it first (EADDRINUSE, or that
 * process answering on it).
 */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
    const port = PICK_LOW + Math.floor(Math.random() * (high - PICK_LOW));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found in ${PICK_LOW}-${high - 1}`);
}

function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    // A range reaching down near PICK_LOW leaves no room below it: picks may then be
    // ephemeral ports, as every pick was before.
    return low > PICK_LOW + 1_000 ? low : EPHEMERAL_LOW_DEFAULT;
  } catch {
    // Not Linux: below Linux's default range is below the IANA one (49152-) too.
    return EPHEMERAL_LOW_DEFAULT;
  }
}

/** Spawns redis-server and resolves once it accepts connections. */
async function spawnRedis(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no"];
  args.push("--protected-mode", "no", "--dir", dir, "--daemonize", "no", ...extra);
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  living.add(child);
  child.once("exit", () => living.delete(child));
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server on ${port} not ready:\n${output}`)),
      START_TIMEOUT_MS,
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on ${port} exited (${code}):\n${output}`));
    });
  });
  await ready;
  return child;
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

/** A standalone redis-server on a free port, with its own temporary directory. */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "edge-redis-"));
  let port = 0;
  let child: ChildProcess | undefined;
  // A port found free can be taken before redis binds it; try a few.
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    child = await spawnRedis(port, dir, []).catch((error: unknown) => {
      if (attempt >= 3) throw error;
      return undefined;
    });
  }
  let current: ChildProcess = child;
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    get pid() {
      return current.pid ?? 0;
    },
    async stop() {
      await stopProcess(current, "SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => stopProcess(current, "SIGKILL"),
    async restart() {
      current = await spawnRedis(port, dir, []);
    },
  };
}

/**
 * A Redis Cluster of `masters` masters (and `replicas` replicas of each), all
 * slots assigned and agreed. Nodes keep their cluster config file, so a
 * killed node can be started again and rejoin.
 */
export async function startRedisCluster(
  masters = 3,
  options: RedisClusterOptions = {},
): Promise<RedisCluster> {
  const { replicas = 0, nodeTimeoutMs = 2_000 } = options;
  const dir = mkdtempSync(join(tmpdir(), "edge-cluster-"));
  const children = new Map<number, ChildProcess>();
  const argsOf = (port: number) => [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    `nodes-${port}.conf`,
    "--cluster-node-timeout",
    String(nodeTimeoutMs),
    // As in production (docker/): the other masters keep serving while one's slots fail over.
    "--cluster-require-full-coverage",
    "no",
  ];
  const ports: number[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) {
    const port = await freePort();
    children.set(port, await spawnRedis(port, dir, argsOf(port)));
    ports.push(port);
  }
  const addresses = ports.map((port) => `${HOST}:${port}`);
  const create = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...addresses, "--cluster-replicas", String(replicas), "--cluster-yes"],
    { encoding: "utf8", timeout: 30_000 },
  );
  if (create.status !== 0)
    throw new Error(`redis-cli --cluster create failed:\n${create.stdout}${create.stderr}`);
  const live = () =>
    [...children]
      .filter(([, child]) => child.exitCode === null && child.signalCode === null)
      .map(([port]) => port);
  const waitUntilOk = (timeoutMs = 15_000) => waitForClusterOk(live(), timeoutMs, replicas);
  await waitUntilOk();
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    nodesEnv: addresses.join(","),
    async masterOf(key) {
      // Any live node may still have a stale view for a moment: ask each.
      for (const port of live()) {
        const slot = Number((await command(port, `CLUSTER KEYSLOT ${key}`)).match(/:(\d+)/)?.[1]);
        const master = servingMaster(await command(port, "CLUSTER NODES"), slot);
        if (master !== undefined) return master;
      }
      throw new Error(`no live master serves ${key} (failing over?)`);
    },
    async replicasOf(masterPort) {
      const [port] = live();
      const lines = (await command(port ?? 0, "CLUSTER NODES"))
        .split("\n")
        .map((l) => l.split(" "));
      const portOf = (address = "") => Number(address.split(":")[1]?.split("@")[0]);
      const masterId = lines.find((fields) => portOf(fields[1]) === masterPort)?.[0];
      return lines
        .filter(
          ([, , flags, master]) =>
            flags?.includes("slave") && !flags.includes("fail") && master === masterId,
        )
        .map((fields) => portOf(fields[1]));
    },
    async kill(port) {
      const child = children.get(port);
      if (child) await stopProcess(child, "SIGKILL");
    },
    async restart(port) {
      children.set(port, await spawnRedis(port, dir, argsOf(port)));
    },
    pause: (port) => children.get(port)?.kill("SIGSTOP"),
    resume: (port) => children.get(port)?.kill("SIGCONT"),
    waitUntilOk,
    async stop() {
      for (const child of children.values()) child.kill("SIGCONT");
      await Promise.all([...children.values()].map((child) => stopProcess(child, "SIGTERM")));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The port of the master a CLUSTER NODES listing says serves `slot`, unless it is failing. */
function servingMaster(listing: string, slot: number): number | undefined {
  for (const line of listing.split("\n")) {
    const [, address, flags, , , , , linkState, ...ranges] = line.trim().split(" ");
    if (!flags?.includes("master") || flags.includes("fail") || linkState !== "connected") continue;
    const serves = ranges.some((range) => {
      const [from, to = from] = range.split("-").map(Number);
      return from !== undefined && to !== undefined && slot >= from && slot <= to;
    });
    if (serves) return Number(address?.split(":")[1]?.split("@")[0]);
  }
  return undefined;
}

/**
 * Cluster convergence has no event to wait on: ask each node until all agree
 * (every slot served, every master with its replicas, every replica synced:
 * one that never synced refuses to fail over), within a deadline.
 */
async function waitForClusterOk(
  ports: number[],
  timeoutMs: number,
  replicas: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = await Promise.all(ports.map((port) => command(port, "CLUSTER INFO")));
    const replication = await Promise.all(ports.map((port) => command(port, "INFO replication")));
    if (
      infos.every(
        (info) => info.includes("cluster_state:ok") && info.includes("cluster_slots_ok:16384"),
      ) &&
      replication.every((info) =>
        info.includes("role:master")
          ? Number(/connected_slaves:(\d+)/.exec(info)?.[1]) >= replicas
          : info.includes("master_link_status:up"),
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`cluster did not converge:\n${infos.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether `reply` holds one whole RESP reply (bulk string, integer, status or error). */
function complete(reply: string): boolean {
  const headerEnd = reply.indexOf("\r\n");
  if (headerEnd < 0) return false;
  if (!reply.startsWith("$")) return true;
  const length = Number(reply.slice(1, headerEnd));
  return length < 0 || Buffer.byteLength(reply) >= headerEnd + 2 + length + 2;
}

/** Sends one inline command and returns the raw reply text ("" if the node is down). */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection(port, HOST);
    let reply = "";
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (complete(reply)) socket.end();
    });
    socket.on("close", () => resolve(reply));
    socket.on("error", () => resolve(reply));
    socket.write(`${line}\r\n`);
  });
}
