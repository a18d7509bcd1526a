import { describe, expect, test } from "bun:test";
import { percentDecodes, requestHeadBytes } from "./request-head";

describe("request heads", () => {
  test("the size counts the request line and every header line as the parser reads them", () => {
    const request = new Request("http://127.0.0.1:8090/v1/orders/o1/track?afterSeq=3", {
      headers: { "x-a": "12345", authorization: "Bearer t" },
    });
    // "GET /v1/orders/o1/track?afterSeq=3 HTTP/1.1\r\n" + "x-a: 12345\r\n" + "authorization: Bearer t\r\n"
    expect(requestHeadBytes(request)).toBe(3 + 1 + 30 + 11 + (3 + 5 + 4) + (13 + 8 + 4));
  });

  test("a URL decodes when every escape is whole UTF-8; %ZZ and cut sequences do not", () => {
    for (const good of [
      "http://x/v1/orders/o%2D1/track",
      "http://x/a?q=%E2%82%AC",
      "http://x/plain",
    ])
      expect(percentDecodes(good)).toBe(true);
    for (const bad of [
      "http://x/v1/orders/%ZZ/track",
      "http://x/%E0%A4%A",
      "http://x/a?q=%",
      "http://x/a?%C3",
    ])
      expect(percentDecodes(bad)).toBe(false);
  });
});
