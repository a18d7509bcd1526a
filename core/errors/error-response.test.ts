import { describe, expect, test } from "bun:test";
import { EdgeError } from "./edge-error";
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
