import { expect, test } from "bun:test";
import { parseEnvVariant } from "./env-variant";

test("a variant's pairs split on spaces; the pairs are its label unless one is given", () => {
  expect(parseEnvVariant("BUN_GC_TIMER_DISABLE=1  BUN_JSC_largeHeapSize=268435456")).toEqual({
    label: "BUN_GC_TIMER_DISABLE=1  BUN_JSC_largeHeapSize=268435456",
    env: { BUN_GC_TIMER_DISABLE: "1", BUN_JSC_largeHeapSize: "268435456" },
  });
  expect(parseEnvVariant("heap256: BUN_JSC_largeHeapSize=268435456 A=x=y:z")).toEqual({
    label: "heap256",
    env: { BUN_JSC_largeHeapSize: "268435456", A: "x=y:z" },
  });
  expect(parseEnvVariant("EMPTY=")).toEqual({ label: "EMPTY=", env: { EMPTY: "" } });
});

test("as-is is no variables, with or without a label", () => {
  expect(parseEnvVariant("as-is")).toEqual({ label: "as-is", env: {} });
  expect(parseEnvVariant("defaults: as-is")).toEqual({ label: "defaults", env: {} });
});

test("anything but NAME=value pairs is refused with the text it could not read", () => {
  expect(() => parseEnvVariant("heap=1,gc=2 oops")).toThrow("oops is not NAME=value");
  expect(() => parseEnvVariant("=1")).toThrow("=1 is not NAME=value");
  expect(() => parseEnvVariant("label:")).toThrow("no NAME=value pairs");
});
