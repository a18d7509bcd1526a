import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, PortTakenError, retryIfPortTaken } from "./free-port";

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

/**
 * Spawns redis-server and resolves once it accepts connections. Rejects with
 * PortTakenError when it could not bind (its port, or a cluster node's bus
 * port): another process had it first.
 */
async function spawnRedis(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no"];
  args.push("--protected-mode", "no", "--dir", dir, "--daemonize", "no", ...extra);
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  living.add(child);
  child.once("exit", () => living.delete(child));
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-server on ${port} not ready:\n${output}`));
    }, START_TIMEOUT_MS);
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
    // After its output is all read (exit may come first).
    child.once("close", (code) => {
      clearTimeout(timer);
      // "Could not create server TCP listening socket 127.0.0.1:<port>: bind: Address already in use"
      const taken = /listening socket [^\s]+:(\d+): bind: Address already in use/.exec(output);
      reject(
        taken
          ? new PortTakenError(Number(taken[1]), "redis-server")
          : new Error(`redis-server on ${port} exited (${code}):\n${output}`),
      );
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

/**
 * A standalone redis-server on `port`, or on a free port (picked again while
 * the one picked turns out taken), with its own temporary directory.
 */
export async function startRedis(port?: number): Promise<RedisServer> {
  if (port === undefined) return retryIfPortTaken(async () => startRedis(await freePort()));
  const dir = mkdtempSync(join(tmpdir(), "edge-redis-"));
  const child = await spawnRedis(port, dir, []).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
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
  const busPorts = new Map<number, number>();
  const argsOf = (port: number) => [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    `nodes-${port}.conf`,
    // Its own free port: the default, port + 10000, went unchecked and is often in the
    // ephemeral range (any connection's or port-0 listener's): a node then failed to start.
    "--cluster-port",
    String(busPorts.get(port)),
    "--cluster-node-timeout",
    String(nodeTimeoutMs),
    // As in production (docker/): the other masters keep serving while one's slots fail over.
    "--cluster-require-full-coverage",
    "no",
  ];
  const startNode = () =>
    retryIfPortTaken(async () => {
      const [port, busPort] = [await freePort(), await freePort()];
      busPorts.set(port, busPort);
      children.set(port, await spawnRedis(port, dir, argsOf(port)));
      return port;
    });
  const live = () =>
    [...children]
      .filter(([, child]) => child.exitCode === null && child.signalCode === null)
      .map(([port]) => port);
  const waitUntilOk = (timeoutMs = 15_000) => waitForClusterOk(live(), timeoutMs, replicas);
  async function stop(): Promise<void> {
    for (const child of children.values()) child.kill("SIGCONT");
    await Promise.all([...children.values()].map((child) => stopProcess(child, "SIGTERM")));
    rmSync(dir, { recursive: true, force: true });
  }
  const address = (port: number) => `${HOST}:${port}`;
  const ports: number[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await startNode());
    const args = ["--cluster", "create", ...ports.map(address), "--cluster-yes"];
    args.push("--cluster-replicas", String(replicas));
    const create = spawnSync("redis-cli", args, { encoding: "utf8", timeout: 30_000 });
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed:\n${create.stdout}${create.stderr}`);
    await waitUntilOk();
  } catch (error) {
    // No node of a cluster that never formed outlives the failed start.
    await stop();
    throw error;
  }
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    nodesEnv: ports.map(address).join(","),
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
    stop,
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
