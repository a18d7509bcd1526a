import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface FreezingProxy {
  readonly port: number;
  /** From now on nothing passes either way and nothing is closed: a phone that vanished without a FIN. */
  freeze(): void;
  /** From now on every answer from upstream reaches the client `ms` late, in order: a slow server that answers everything. */
  delayReplies(ms: number): void;
  /**
   * From the first answer from upstream that contains `marker` on, what the
   * clients send is held back (a server that stopped reading just after that
   * answer); `holding` resolves then, `release()` sends what was held, in order.
   */
  holdRequestsAfter(marker: string): { holding: Promise<void>; release(): void };
  /**
   * Resolves once a client has sent bytes containing `text` while frozen
   * (dropped like the rest): a request the frozen server now sits on.
   */
  sentWhileFrozen(text: string): Promise<void>;
  close(): Promise<void>;
}

const SENT_FROZEN_KEPT = 64 * 1024;

/** A TCP proxy on 127.0.0.1 to `targetPort` that can go silent, or slow, on demand. */
export async function startFreezingProxy(targetPort: number): Promise<FreezingProxy> {
  let frozen = false;
  let replyDelayMs = 0;
  let marker: string | undefined;
  let holding: PromiseWithResolvers<void> | undefined;
  const held: Array<{ to: Socket; chunk: Buffer }> = [];
  /** What clients sent while frozen (the last SENT_FROZEN_KEPT characters), and who waits for a text in it. */
  let sentFrozen = "";
  const awaited: Array<{ text: string; seen(): void }> = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("close", () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    track(client);
    track(upstream);
    client.on("data", (chunk: Buffer) => {
      if (frozen) {
        sentFrozen = (sentFrozen + chunk.toString("latin1")).slice(-SENT_FROZEN_KEPT);
        for (const wanted of awaited.filter(({ text }) => sentFrozen.includes(text))) {
          awaited.splice(awaited.indexOf(wanted), 1);
          wanted.seen();
        }
        return;
      }
      if (held.length > 0 || (holding && marker === undefined)) held.push({ to: upstream, chunk });
      else upstream.write(chunk);
    });
    /** The answers delayed so far, delivered one after another. */
    let delivered = Promise.resolve();
    upstream.on("data", (chunk: Buffer) => {
      if (frozen) return;
      if (replyDelayMs > 0) {
        const dueAt = performance.now() + replyDelayMs;
        delivered = delivered
          .then(() => Bun.sleep(Math.max(0, dueAt - performance.now())))
          .then(() => {
            if (!frozen) client.write(chunk);
          });
      } else client.write(chunk);
      if (marker !== undefined && chunk.includes(marker)) {
        marker = undefined;
        holding?.resolve();
      }
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const)
      from.once("close", () => {
        if (!frozen) to.destroy();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      frozen = true;
    },
    delayReplies(ms) {
      replyDelayMs = ms;
    },
    holdRequestsAfter(text) {
      marker = text;
      holding = Promise.withResolvers<void>();
      return {
        holding: holding.promise,
        release() {
          holding = undefined;
          marker = undefined;
          for (const { to, chunk } of held.splice(0)) to.write(chunk);
        },
      };
    },
    sentWhileFrozen(text) {
      if (sentFrozen.includes(text)) return Promise.resolve();
      return new Promise((resolve) => awaited.push({ text, seen: resolve }));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
