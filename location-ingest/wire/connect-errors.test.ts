// An EdgeError's Retry-After reaches Connect and gRPC clients of the ingest:
// every 503 (a draining ingest answers unary calls `unavailable`) says when
// to come back, through connect-node and the lean unary path alike.
import { expect, test } from "bun:test";
import { createConnectRouter } from "@connectrpc/connect";
import {
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import { EdgeError } from "../../core/errors/edge-error";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { translateErrors } from "./connect-errors";
import { statusTrailers } from "./grpc-stream-path";
import { unaryErrorAnswer } from "./unary-send-ping";

const draining = () => new EdgeError("draining", "server is draining");

test("connect-node answers a draining unary call 503 with Retry-After (1 s, or what the error says)", async () => {
  let thrown = draining();
  const router = createConnectRouter({ interceptors: [translateErrors] });
  router.service(LocationIngestService, {
    sendPing: () => {
      throw thrown;
    },
  });
  const handler = router.handlers.find((h) => h.method === LocationIngestService.method.sendPing);
  if (!handler) throw new Error("no SendPing handler");
  const call = async () => {
    const request = new Request(`http://127.0.0.1${handler.requestPath}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    return universalServerResponseToFetch(
      await handler(universalServerRequestFromFetch(request, { httpVersion: "1.1" })),
    );
  };
  const response = await call();
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toBe("1");
  expect(await response.json()).toMatchObject({ code: "unavailable" });
  thrown = new EdgeError("unavailable", "redis away", { retryAfterSeconds: 4 });
  expect((await call()).headers.get("retry-after")).toBe("4");
  // Not a 503: no Retry-After.
  thrown = new EdgeError("bad_request", "no");
  expect((await call()).headers.get("retry-after")).toBeNull();
});

test("the lean unary path sends the same Retry-After: a Connect header, a gRPC trailer", () => {
  const json = unaryErrorAnswer("connect-json", draining());
  expect([json.status, json.headers["retry-after"]]).toEqual([503, "1"]);
  expect(unaryErrorAnswer("connect-proto", draining()).headers["retry-after"]).toBe("1");
  const grpc = unaryErrorAnswer("grpc", draining());
  expect(grpc.trailers).toMatchObject({ "grpc-status": "14", "retry-after": "1" });
  expect(statusTrailers(new EdgeError("bad_request", "no"))).toEqual({
    "grpc-status": "3",
    "grpc-message": "no",
  });
});
