import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EdgeError } from "../core/errors/edge-error";
import { errorResponse, requestIdOf } from "../core/errors/error-response";
import type { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { createGrpcStreamFastPath, isGrpcStreamPings } from "./grpc-stream-fast-path";
import { registerIngestRoutes } from "./routes";

const SESSION_CLOSE_GRACE_MS = 2_000;

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * gRPC, gRPC-Web and Connect over HTTP/2 cleartext (h2c): what rider apps
 * hold their StreamPings open on.
 */
export async function startGrpcServer(
  port: number,
  service: ServiceImpl<typeof LocationIngestService>,
  fastPath: Parameters<typeof createGrpcStreamFastPath>[0],
): Promise<RunningServer> {
  const connectHandler = connectNodeAdapter({
    grpc: true,
    grpcWeb: true,
    connect: true,
    routes: (router) => registerIngestRoutes(router, service),
  });
  const serveStreamPings = createGrpcStreamFastPath(fastPath);
  const server = http2.createServer((request, response) => {
    if (isGrpcStreamPings(request)) return void serveStreamPings(request, response);
    connectHandler(request, response);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "0.0.0.0", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Streams were already told to reconnect: close sessions gracefully,
        // and cut those a client keeps open past the grace period.
        for (const session of sessions) session.close();
        setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, SESSION_CLOSE_GRACE_MS).unref();
      }),
  };
}

/**
 * HTTP/1.1 for clients without HTTP/2: Connect unary (JSON or binary), so
 * `POST /delivery.tracking.v1.LocationIngestService/SendPing` works with
 * curl, plus the health and metrics routes.
 */
export function startHttpServer(
  port: number,
  service: ServiceImpl<typeof LocationIngestService>,
  healthRoutes: (request: Request) => Promise<Response | undefined>,
): RunningServer {
  const router = createConnectRouter({ grpc: false, grpcWeb: true, connect: true });
  registerIngestRoutes(router, service);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const server = Bun.serve({
    port,
    hostname: "0.0.0.0",
    async fetch(request) {
      const health = await healthRoutes(request);
      if (health) return health;
      const handler = handlers.get(new URL(request.url).pathname);
      if (!handler) {
        return errorResponse(new EdgeError("not_found", "no such route"), requestIdOf(request));
      }
      const universal = universalServerRequestFromFetch(request, {});
      return universalServerResponseToFetch(await handler(universal));
    },
  });
  return {
    port: server.port ?? port,
    close: async () => {
      await server.stop();
    },
  };
}
