import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
  readonly nodes: { host: string; port: number }[];
  /** The REDIS_CLUSTER_NODES form: host:port,host:port,... */
  readonly nodesEnv: string;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 5_000;
const living = new Set<ChildProcess>();
// Last resort if a test run dies before its afterAll: no redis-server outlives it.
process.once("exit", () => {
  for (const child of living) child.kill("SIGKILL");
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
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

/** A Redis Cluster of `masters` masters (no replicas), all slots assigned and agreed. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "edge-cluster-"));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < masters; i++) {
    const port = await freePort();
    const args = [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      `nodes-${port}.conf`,
      "--cluster-node-timeout",
      "2000",
    ];
    children.push(await spawnRedis(port, dir, args));
    ports.push(port);
  }
  const addresses = ports.map((port) => `${HOST}:${port}`);
  const create = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
    {
      encoding: "utf8",
      timeout: 15_000,
    },
  );
  if (create.status !== 0)
    throw new Error(`redis-cli --cluster create failed:\n${create.stdout}${create.stderr}`);
  await waitForClusterOk(ports);
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    nodesEnv: addresses.join(","),
    async stop() {
      await Promise.all(children.map((child) => stopProcess(child, "SIGTERM")));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Cluster convergence has no event to wait on: ask each node until all agree, within a deadline. */
async function waitForClusterOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const infos = await Promise.all(ports.map((port) => command(port, "CLUSTER INFO")));
    if (
      infos.every(
        (info) =>
          info.includes("cluster_state:ok") && info.includes("cluster_slots_assigned:16384"),
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`cluster did not converge:\n${infos.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Sends one inline command and returns the raw reply text. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection(port, HOST);
    let reply = "";
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.startsWith("$") && reply.endsWith("\r\n") && reply.split("\r\n").length > 2)
        socket.end();
    });
    socket.on("close", () => resolve(reply));
    socket.on("error", () => resolve(reply));
    socket.write(`${line}\r\n`);
  });
}
