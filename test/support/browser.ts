// Debian's Chromium driven by playwright-core, for the web UI tests: the system browser
// (/usr/bin/chromium, installed by .ci/run with apt-get), never one downloaded by a test tool.
// Without it the browser tests are skipped locally, but fail under CI=true: CI must never pass
// by skipping them.
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.SCORECAR_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go (a test artifact; .gitignore'd). */
export const ARTIFACTS = fileURLToPath(new URL('../../artifacts/ui/', import.meta.url));

/** True when the browser is there; throws under CI=true when it is not. */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const why = `no Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`;
  if (process.env.CI === 'true') throw new Error(why);
  console.warn(`${why}: skipping the browser tests (they fail under CI=true)`);
  return false;
}

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium (playwright gives every launch a new empty profile of its own).
 * The flags keep it off the network (this machine's is closed: background services would only
 * fail to connect) and let it run as root.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}
