import { join } from "node:path";

export interface TestCertificate {
  /** PEM paths: the certificate (also the clients' trust anchor) and its key. */
  readonly certPath: string;
  readonly keyPath: string;
  /** The certificate's PEM text, for clients' `ca` option. */
  readonly pem: string;
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with openssl
 * in `dir` at test start (P-256, valid two days). Clients trust exactly it.
 */
export async function makeSelfSignedCertificate(dir: string): Promise<TestCertificate> {
  const certPath = join(dir, "fullchain.pem");
  const keyPath = join(dir, "privkey.pem");
  const openssl = Bun.spawn(
    [
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      "/CN=delivery-edge test",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  if ((await openssl.exited) !== 0)
    throw new Error(`openssl failed: ${await new Response(openssl.stderr).text()}`);
  return { certPath, keyPath, pem: await Bun.file(certPath).text() };
}
