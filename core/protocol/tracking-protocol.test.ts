import { describe, expect, test } from "bun:test";
import { CLOSE, chooseSubprotocol, reconnectRule } from "./tracking-protocol";

describe("close codes and their reconnect rules", () => {
  test("each code's rule; `moved` and a drain follow the url only when one was sent", () => {
    expect(reconnectRule(CLOSE.moved.code, "ws://edge/t2")).toBe("follow-moved");
    expect(reconnectRule(CLOSE.draining.code, "ws://edge/t2")).toBe("follow-moved");
    expect(reconnectRule(CLOSE.draining.code, undefined)).toBe("backoff");
    expect(reconnectRule(CLOSE.slowConsumer.code, undefined)).toBe("backoff");
    expect(reconnectRule(CLOSE.tokenExpired.code, undefined)).toBe("refresh-token");
    expect(reconnectRule(CLOSE.unexpectedMessage.code, undefined)).toBe("never");
    expect(reconnectRule(CLOSE.messageTooBig.code, undefined)).toBe("never");
    expect(reconnectRule(CLOSE.orderEnded.code, undefined)).toBe("never");
    expect(reconnectRule(CLOSE.notAllowed.code, undefined)).toBe("never");
    expect(reconnectRule(CLOSE.unavailable.code, undefined)).toBe("backoff");
  });

  test("codes not in the table (a dropped network, a server error) mean backoff", () => {
    for (const code of [1000, 1006, 1011, 4999])
      expect(reconnectRule(code, undefined)).toBe("backoff");
  });

  test("every code is listed once", () => {
    const codes = Object.values(CLOSE).map((close) => close.code);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe("subprotocols", () => {
  test("the first frame subprotocol offered wins; nothing offered, the first JSON frames and no answer; offers without a frame subprotocol, none (refused)", () => {
    expect(chooseSubprotocol(["bearer.t", "tracking.v1.proto", "tracking.v2.json"])).toEqual({
      format: "proto",
      protocol: "tracking.v1.proto",
    });
    expect(chooseSubprotocol(["tracking.v2.json", "tracking.v1.proto"])).toEqual({
      format: "json",
      protocol: "tracking.v2.json",
    });
    expect(chooseSubprotocol(["tracking.v1.json", "tracking.v2.json"])).toEqual({
      format: "legacyJson",
      protocol: "tracking.v1.json",
    });
    expect(chooseSubprotocol([])).toEqual({ format: "legacyJson" });
    expect(chooseSubprotocol(["bearer.t"])).toBeUndefined();
    expect(chooseSubprotocol(["bearer.t", "tracking.v3.json"])).toBeUndefined();
  });
});
