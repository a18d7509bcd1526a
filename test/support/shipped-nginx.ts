import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { exitedBeforeReady } from "./free-port";
import type { TestCertificate } from "./tls-cert";
import { waitUntil } from "./wait";

const SHIPPED_CONFIG = join(import.meta.dir, "..", "..", "docker", "nginx.conf");
// Debian puts it in /usr/sbin, which a non-root PATH may lack.
const NGINX = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

export interface ShippedNginx {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** wss://127.0.0.1:<port> */
  readonly wsUrl: string;
  readonly port: number;
  /** The config as run: the shipped one with addresses changed. */
  readonly config: string;
  accessLog(): Promise<string>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Runs Debian's nginx on docker/nginx.conf with its addresses changed and
 * nothing else: each `server <service>:<port>` to the local address the
 * test gives, the listen ports to loopback ports, and the file locations
 * (certificate, logs, temp files, pid) into `dir`. Every replacement must
 * match (a renamed service fails here, not silently), and no compose
 * address may remain. Resolves once nginx answers /healthz over TLS;
 * rejects with PortTakenError when it exits on a port another process holds.
 */
export async function startShippedNginx(options: {
  dir: string;
  certificate: TestCertificate;
  httpsPort: number;
  httpPort: number;
  /** compose address in the config ("tracking-1:8090") -> "127.0.0.1:<port>". */
  upstreams: Record<string, string>;
}): Promise<ShippedNginx> {
  const { dir, certificate, httpsPort, httpPort, upstreams } = options;
  const logs = join(dir, "logs");
  const temp = join(dir, "temp");
  mkdirSync(logs, { recursive: true });
  mkdirSync(temp, { recursive: true, mode: 0o755 });
  const tlsDir = join(certificate.certPath, "..");
  const replacements: [string | RegExp, string][] = [
    ["listen 80;", `listen 127.0.0.1:${httpPort};`],
    ["listen 443 ssl http2;", `listen 127.0.0.1:${httpsPort} ssl http2;`],
    ["pid /run/nginx.pid;", `pid ${join(dir, "nginx.pid")};`],
    [/\/var\/log\/nginx\//g, `${logs}/`],
    [/\/var\/lib\/nginx\//g, `${temp}/`],
    [/\/etc\/nginx\/tls\//g, `${tlsDir}/`],
    ...Object.entries(upstreams).map(([service, local]): [RegExp, string] => [
      new RegExp(`server ${service}( |;)`, "g"),
      `server ${local}$1`,
    ]),
  ];
  let config = await Bun.file(SHIPPED_CONFIG).text();
  for (const [from, to] of replacements) {
    const next = config.replace(from, to);
    if (next === config) throw new Error(`docker/nginx.conf no longer contains ${from}`);
    config = next;
  }
  const left = /server [a-z]+-\d+:\d+/.exec(config);
  if (left) throw new Error(`docker/nginx.conf has an address the test did not map: ${left[0]}`);
  const configPath = join(dir, "nginx.conf");
  await Bun.write(configPath, config);

  const args = [NGINX, "-p", dir, "-c", configPath, "-e", join(logs, "error.log")];
  const check = Bun.spawn([...args, "-t", "-q"], { stdout: "ignore", stderr: "pipe" });
  if ((await check.exited) !== 0)
    throw new Error(`nginx -t failed: ${await new Response(check.stderr).text()}`);
  const child: Subprocess = Bun.spawn([...args, "-g", "daemon off;"], {
    stdout: "ignore",
    stderr: "inherit",
  });
  let exitCode: number | undefined;
  void child.exited.then((code) => {
    exitCode = code;
  });
  const url = `https://127.0.0.1:${httpsPort}`;
  // Not ready if it exited (a port taken: nginx tries its binds for ~2.5 s, then gives up).
  await waitUntil(
    async () =>
      exitCode !== undefined ||
      (await fetch(`${url}/healthz`, { tls: { ca: certificate.pem } }).catch(() => undefined))
        ?.ok === true,
    10_000,
    "nginx answering over TLS",
  );
  if (exitCode !== undefined)
    throw await exitedBeforeReady("nginx", [httpsPort, httpPort], exitCode);
  return {
    url,
    wsUrl: `wss://127.0.0.1:${httpsPort}`,
    port: httpsPort,
    config,
    accessLog: () => Bun.file(join(logs, "access.log")).text(),
    errorLog: () => Bun.file(join(logs, "error.log")).text(),
    async stop() {
      // SIGQUIT: nginx's graceful shutdown; SIGTERM is its fast one.
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}
