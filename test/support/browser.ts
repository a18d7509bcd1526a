import { type Browser, chromium } from "playwright-core";

/** Debian's chromium (scripts/setup.sh installs it); Playwright never downloads a browser here. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Headless Chromium (Playwright gives each launch a fresh profile).
 * Background networking is off: the machine reaches nothing beyond
 * loopback and the registries, and Chromium's calls home would only fail.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
