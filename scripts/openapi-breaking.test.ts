import { describe, expect, test } from "bun:test";
import { apiDocument } from "../gateway/api/api-document";
import { DISPATCH_DEFAULTS } from "../gateway/config";
import { breakingChanges } from "./openapi-breaking";

type Json = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: the cases edit an untyped JSON document in place
type Doc = any;

/** A small document: one GET with a query parameter, one POST with a body, a shared component. */
function base(): Json {
  return {
    openapi: "3.1.0",
    components: {
      schemas: {
        Order: {
          type: "object",
          properties: {
            id: { type: "string" },
            status: { type: "string", enum: ["CONFIRMED", "DELIVERED"] },
            total: { type: "integer" },
            note: { type: "string" },
          },
          required: ["id", "status", "total"],
        },
      },
    },
    paths: {
      "/v1/orders/{id}": {
        get: {
          security: [{ bearer: [] }],
          parameters: [
            { name: "id", in: "path", required: true, schema: { type: "string" } },
            {
              name: "limit",
              in: "query",
              required: false,
              schema: { type: "integer", maximum: 50 },
            },
          ],
          responses: {
            "200": {
              description: "ok",
              headers: { "RateLimit-Limit": { schema: { type: "integer" } } },
              content: { "application/json": { schema: { $ref: "#/components/schemas/Order" } } },
            },
            "404": { description: "no" },
          },
        },
      },
      "/v1/orders": {
        post: {
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: {
                    restaurantId: { type: "string", pattern: "^[a-z]+$" },
                    quantity: { type: "number", minimum: 1, maximum: 99 },
                    mode: { type: "string", enum: ["card", "cash"] },
                    note: { type: "string" },
                  },
                  required: ["restaurantId"],
                },
              },
            },
          },
          responses: { "201": { description: "made" } },
        },
      },
    },
  };
}

/** A copy of the base document changed by `edit` (which gets the copy to mutate). */
function changed(edit: (doc: Doc) => void): Json {
  const doc = structuredClone(base());
  edit(doc);
  return doc;
}

const body = (doc: Doc) =>
  doc.paths["/v1/orders"].post.requestBody.content["application/json"].schema;
const order = (doc: Doc) => doc.components.schemas.Order;
const get = (doc: Doc) => doc.paths["/v1/orders/{id}"].get;

describe("what breaks a client", () => {
  const cases: [string, (doc: Doc) => void, RegExp][] = [
    [
      "an operation removed",
      (d) => delete d.paths["/v1/orders"],
      /POST \/v1\/orders: operation removed/,
    ],
    ["a parameter removed", (d) => get(d).parameters.pop(), /query parameter limit: removed/],
    [
      "a parameter became required",
      (d) => (get(d).parameters[1].required = true),
      /limit: became required/,
    ],
    [
      "a new required parameter",
      (d) =>
        get(d).parameters.push({
          name: "city",
          in: "query",
          required: true,
          schema: { type: "string" },
        }),
      /new required query parameter city/,
    ],
    [
      "a parameter's maximum lowered",
      (d) => (get(d).parameters[1].schema.maximum = 40),
      /maximum lowered from 50 to 40/,
    ],
    [
      "a new required body field",
      (d) => {
        body(d).properties.city = { type: "string" };
        body(d).required.push("city");
      },
      /request body: city: new required field/,
    ],
    [
      "a body field became required",
      (d) => body(d).required.push("note"),
      /note: field became required/,
    ],
    [
      "a body field no longer accepted",
      (d) => delete body(d).properties.note,
      /note: field no longer accepted/,
    ],
    [
      "a type narrowed (number to integer)",
      (d) => (body(d).properties.quantity.type = "integer"),
      /quantity: type narrowed from number to integer/,
    ],
    [
      "an enum value no longer accepted",
      (d) => (body(d).properties.mode.enum = ["card"]),
      /mode: no longer accepts "cash"/,
    ],
    [
      "a pattern changed",
      (d) => (body(d).properties.restaurantId.pattern = "^[a-z]{1,8}$"),
      /restaurantId: pattern changed/,
    ],
    [
      "a minimum raised",
      (d) => (body(d).properties.quantity.minimum = 2),
      /minimum raised from 1 to 2/,
    ],
    [
      "a maxLength where there was none",
      (d) => (body(d).properties.note.maxLength = 10),
      /maxLength lowered from none to 10/,
    ],
    [
      "an open body closed",
      (d) => (body(d).additionalProperties = false),
      /no longer accepts fields beyond/,
    ],
    [
      "a media type dropped",
      (d) => {
        const content = d.paths["/v1/orders"].post.requestBody.content;
        content["application/x-www-form-urlencoded"] = content["application/json"];
        delete content["application/json"];
      },
      /request body no longer accepts application\/json/,
    ],
    [
      "a response field removed (through a $ref)",
      (d) => delete order(d).properties.total,
      /response 200: total: field removed/,
    ],
    [
      "a response field no longer always there",
      (d) => (order(d).required = ["id", "status"]),
      /total: field no longer always present/,
    ],
    [
      "a response type widened",
      (d) => (order(d).properties.total.type = "number"),
      /total: type widened from integer to number/,
    ],
    [
      "a response field became nullable",
      (d) => (order(d).properties.id.type = ["string", "null"]),
      /id: type widened from string to string,null/,
    ],
    [
      "a success response removed",
      (d) => delete d.paths["/v1/orders"].post.responses["201"],
      /response 201: removed/,
    ],
    [
      "a response header removed",
      (d) => (get(d).responses["200"].headers = {}),
      /header RateLimit-Limit removed/,
    ],
    [
      "authentication added",
      (d) => (d.paths["/v1/orders"].post.security = [{ bearer: [] }]),
      /now requires authentication/,
    ],
  ];
  for (const [name, edit, expected] of cases) {
    test(name, () => {
      const changes = breakingChanges(base(), changed(edit));
      expect(changes.length).toBeGreaterThan(0);
      expect(changes.join("\n")).toMatch(expected);
    });
  }
});

describe("what does not", () => {
  const cases: [string, (doc: Doc) => void][] = [
    ["nothing changed", () => {}],
    ["a new optional body field", (d) => (body(d).properties.tip = { type: "integer" })],
    ["a new response field", (d) => (order(d).properties.eta = { type: "integer" })],
    [
      "a new response enum value (clients accept unknown values)",
      (d) => order(d).properties.status.enum.push("CANCELLED"),
    ],
    ["a bound widened", (d) => (body(d).properties.quantity.maximum = 200)],
    ["an enum widened in a request", (d) => body(d).properties.mode.enum.push("voucher")],
    ["an error response removed", (d) => delete get(d).responses["404"]],
    ["a new error response", (d) => (get(d).responses["429"] = { description: "slow down" })],
    [
      "a new operation",
      (d) => (d.paths["/v1/ping"] = { get: { responses: { "200": { description: "pong" } } } }),
    ],
    [
      "a path parameter renamed",
      (d) => {
        d.paths["/v1/orders/{orderId}"] = d.paths["/v1/orders/{id}"];
        delete d.paths["/v1/orders/{id}"];
        get({ paths: { "/v1/orders/{id}": d.paths["/v1/orders/{orderId}"] } }).parameters[0].name =
          "orderId";
      },
    ],
    [
      "a request type widened (integer to number)",
      (d) => (get(d).parameters[1].schema.type = "number"),
    ],
  ];
  for (const [name, edit] of cases) {
    test(name, () => expect(breakingChanges(base(), changed(edit))).toEqual([]));
  }
});

test("on the gateway's own document: a lower candidate limit and a dropped response field are caught", () => {
  const published = apiDocument(DISPATCH_DEFAULTS) as unknown as Json;
  expect(breakingChanges(published, published)).toEqual([]);
  const lower = apiDocument({ ...DISPATCH_DEFAULTS, maxCount: DISPATCH_DEFAULTS.maxCount - 10 });
  expect(breakingChanges(published, lower as unknown as Json)).toEqual([
    `GET /v1/dispatch/candidates: query parameter limit: maximum lowered from ${DISPATCH_DEFAULTS.maxCount} to ${DISPATCH_DEFAULTS.maxCount - 10}`,
  ]);
  const noVersion = structuredClone(published) as Doc;
  delete noVersion.components.schemas.OrderStatusView.properties.version;
  expect(breakingChanges(published, noVersion)).toEqual([
    "GET /v1/orders/{id}/status: response 200: version: field removed",
  ]);
});
