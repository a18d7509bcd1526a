import { createServer } from "node:net";

/**
 * Listens on 127.0.0.1:`port` and closes again at once: the port it got (for
 * 0, the one the kernel picked), or undefined when another listener has it.
 */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const got = typeof address === "object" && address ? address.port : undefined;
      server.close(() => resolve(got));
    });
  });
}

/** Whether a listener could take `port` on 127.0.0.1 right now. */
export async function canListen(port: number): Promise<boolean> {
  return (await listenOnce(port)) !== undefined;
}

/**
 * A port free right now on 127.0.0.1, picked by the kernel from its
 * ephemeral range. The demo's own pick (its Redis): a test that starts the
 * demo picks the demo's other ports below that range (test/support's
 * freePort), so the demo's pick never lands on one of them.
 */
export async function ephemeralPort(): Promise<number> {
  const port = await listenOnce(0);
  if (port === undefined) throw new Error("no ephemeral port free on 127.0.0.1");
  return port;
}
