import { describe, expect, test } from "bun:test";
import { EdgeError } from "./edge-error";
import { ERROR_CODES, type ErrorCode } from "./error-codes";
import { errorResponse, requestIdOf } from "./error-response";

describe("error responses", () => {
  test("carry the code's status, the JSON shape and the request id as a header", async () => {
    const response = errorResponse(new EdgeError("forbidden", "not yours"), "req-1", {
      "retry-after": "3",
    });
    expect(response.status).toBe(403);
    expect(response.headers.get("x-request-id")).toBe("req-1");
    expect(response.headers.get("retry-after")).toBe("3");
    expect(await response.json()).toEqual({
      error: { code: "forbidden", message: "not yours", requestId: "req-1" },
    });
  });

  test("every 503 says when to come back (1 s unless the error knows better); other statuses do not", () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    const unavailable = codes.filter((code) => ERROR_CODES[code].http === 503);
    expect(unavailable).toEqual(
      expect.arrayContaining(["draining", "unavailable", "upstream_unavailable"]),
    );
    for (const code of unavailable)
      expect([
        code,
        errorResponse(new EdgeError(code, "x"), "r").headers.get("retry-after"),
      ]).toEqual([code, "1"]);
    const breaker = new EdgeError("upstream_unavailable", "x", { retryAfterSeconds: 4 });
    expect(errorResponse(breaker, "r").headers.get("retry-after")).toBe("4");
    for (const code of codes.filter((code) => ![429, 503].includes(ERROR_CODES[code].http)))
      expect([
        code,
        errorResponse(new EdgeError(code, "x"), "r").headers.get("retry-after"),
      ]).toEqual([code, null]);
  });

  test("an internal error's own words never reach the client (HTTP body or Connect message); its message stays for the log", async () => {
    const bug = new EdgeError("internal", "order record with status LEGACY_BILLING_HOLD");
    const body = (await errorResponse(bug, "req-2").json()) as { error: { message: string } };
    expect([body.error.message, bug.toConnectError().rawMessage]).toEqual([
      "internal error",
      "internal error",
    ]);
    expect(bug.message).toBe("order record with status LEGACY_BILLING_HOLD");
    // Every other code's message is written for the client and goes out as it is.
    const refusal = new EdgeError("forbidden", "not yours");
    expect(refusal.toConnectError().rawMessage).toBe("not yours");
  });

  test("a plain inbound X-Request-Id is kept; a long or odd one is replaced", () => {
    const withId = (id: string) => new Request("http://x/", { headers: { "x-request-id": id } });
    expect(requestIdOf(withId("abc-123_="))).toBe("abc-123_=");
    for (const bad of ["a b", "x".repeat(256), "<script>", "ä"]) {
      const id = requestIdOf(withId(bad));
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(requestIdOf(new Request("http://x/"))).toMatch(/^[0-9a-f-]{36}$/);
  });
});
