import { join } from "node:path";
import { freePort } from "../../test/support/free-port";
import { lineReader, nodeExecutable, waitForOk } from "../support/child";
import { type GcMeter, gcMeter } from "./gc-log";

/** A server the ingest bench loads: where riders connect, its process, its GC log. */
export interface ServerUnderTest {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** The ingest's own /metrics (write latency); none for the peer. */
  readonly metricsUrl?: string;
  readonly gc: GcMeter;
  /** Whether its GC log counts every byte allocated (gc-log.ts). */
  readonly countsAllocation: boolean;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dir, "..", "..");

/** `command` run on the given cores only (taskset's list, e.g. "0"), or anywhere. */
export const onCpus = (cpus: string | undefined, command: string[]) =>
  cpus === undefined ? command : ["taskset", "-c", cpus, ...command];

/** Moves a running process (all its threads) to the given cores: a Redis started before. */
export function moveToCpus(pid: number, cpus: string): void {
  const moved = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpus, String(pid)], {
    stdout: "ignore",
  });
  if (!moved.success) throw new Error(`taskset could not move process ${pid} to cores ${cpus}`);
}
const echo = (line: string) => console.error(line);

/**
 * The ingest (`entry`: this checkout's location-ingest/main.ts, or another
 * checkout's for a before/after in one run, named `name`) on `redisUrl`,
 * with JavaScriptCore's GC log on. Without `gcTimer`, the timer-driven
 * collections are off (Bun's and JavaScriptCore's own Eden and Full
 * activity timers), so every collection is one the heap asked for and
 * the log counts every byte allocated (gc-log.ts): for the allocation run
 * only, since it changes when collections happen. `env` adds to (or
 * overrides) its environment: JavaScriptCore options (`BUN_JSC_*`) are read
 * only at start, so a run that compares them passes them here.
 */
export async function startIngest(
  entry: string,
  redisUrl: string,
  secret: string,
  options: { gcTimer: boolean; name?: string; cpus?: string; env?: Record<string, string> },
): Promise<ServerUnderTest> {
  const { gcTimer, name = "ingest", cpus, env = {} } = options;
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const child = Bun.spawn(onCpus(cpus, [process.execPath, entry]), {
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      JWT_SECRET: secret,
      INGEST_PORT: String(grpcPort),
      INGEST_HTTP_PORT: String(httpPort),
      // The load process carries 100 riders per connection (a phone holds one).
      INGEST_MAX_STREAMS_PER_CONNECTION: "100",
      LOG_LEVEL: "warn",
      BUN_JSC_logGC: "1",
      ...(gcTimer ? {} : { BUN_GC_TIMER_DISABLE: "1", BUN_JSC_collectionTimerMaxPercentCPU: "0" }),
      ...env,
    },
    stdout: "inherit",
    stderr: "pipe",
  });
  const gc = gcMeter(child.stderr, "bun", echo);
  await waitForOk(`http://127.0.0.1:${httpPort}/readyz`);
  return {
    name:
      (gcTimer ? name : `${name} (GC timers off)`) + (cpus === undefined ? "" : ` on core ${cpus}`),
    pid: child.pid,
    url: `http://127.0.0.1:${grpcPort}`,
    metricsUrl: `http://127.0.0.1:${httpPort}/metrics`,
    gc,
    countsAllocation: !gcTimer,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

/** The peer: a stock @grpc/grpc-js server on Node (peer-grpc-js-server.mjs), with V8's GC trace on. */
export async function startPeer(redisUrl: string, secret: string): Promise<ServerUnderTest> {
  const child = Bun.spawn(
    [
      nodeExecutable(),
      "--trace-gc",
      join(import.meta.dir, "peer-grpc-js-server.mjs"),
      ...["--redis", redisUrl, "--secret", secret],
    ],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  // --trace-gc writes to stdout beside the server's one line naming its port (one reader for both).
  let listening: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve, reject) => {
    listening = resolve;
    void child.exited.then(() => reject(new Error("the peer exited before listening")));
  });
  const gc = gcMeter(child.stdout, "node", (line) => {
    const announced = /\{"port":(\d+)\}/.exec(line)?.[1];
    if (announced) listening(Number(announced));
    else echo(line);
  });
  void child.stderr.pipeTo(
    new WritableStream({ write: (chunk) => void process.stderr.write(chunk) }),
  );
  return {
    name: "peer",
    pid: child.pid,
    url: `http://127.0.0.1:${await port}`,
    gc,
    countsAllocation: true,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

/**
 * The floor (floor-server.ts): the ingest's wire with nothing behind it, or
 * with bare pipelined Redis writes on `redisUrl`; under Bun as deployed (GC
 * timers on), with JavaScriptCore's GC log on for its pauses.
 */
export async function startFloor(redisUrl?: string): Promise<ServerUnderTest> {
  const child = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "floor-server.ts"),
      ...(redisUrl ? ["--redis", redisUrl] : []),
    ],
    { env: { ...process.env, BUN_JSC_logGC: "1" }, stdout: "pipe", stderr: "pipe" },
  );
  const gc = gcMeter(child.stderr, "bun", echo);
  const announced = await lineReader(child).until((line) => line.startsWith('{"port":'));
  const { port } = JSON.parse(announced) as { port: number };
  return {
    name: redisUrl ? "floor + Redis writes" : "floor",
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    gc,
    countsAllocation: false,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}
