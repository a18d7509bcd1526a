import { expect, test } from "bun:test";
import { join } from "node:path";
import { createTokenVerifier } from "./token-verifier";

const SECRET = "cli-secret-0123456789abcdef-0123456789";
const cli = join(import.meta.dir, "token-cli.ts");

function run(args: string[], env: Record<string, string | undefined>) {
  const result = Bun.spawnSync([process.execPath, cli, ...args], {
    env: { PATH: process.env.PATH, ...env },
  });
  return {
    code: result.exitCode,
    stdout: result.stdout.toString().trim(),
    stderr: result.stderr.toString(),
  };
}

test("`bun run token` prints a token the verifier accepts with the claims asked for", async () => {
  const { code, stdout } = run(["--role", "rider", "--sub", "r1", "--city", "london"], {
    JWT_SECRET: SECRET,
  });
  expect(code).toBe(0);
  const identity = await createTokenVerifier({ secret: SECRET }).verify(stdout);
  expect(identity).toMatchObject({ sub: "r1", role: "rider", city: "london" });
});

test("it refuses to run without JWT_SECRET, with a bad role, or a rider without a city", () => {
  const noSecret = run(["--role", "ops", "--sub", "o1"], {});
  expect(noSecret.code).not.toBe(0);
  expect(noSecret.stderr).toContain("JWT_SECRET");
  const badRole = run(["--role", "admin", "--sub", "x"], { JWT_SECRET: SECRET });
  expect(badRole.code).toBe(2);
  expect(badRole.stderr).toContain("--role must be one of");
  const noCity = run(["--role", "rider", "--sub", "r1"], { JWT_SECRET: SECRET });
  expect(noCity.code).toBe(2);
  expect(noCity.stderr).toContain("--city is required");
});
