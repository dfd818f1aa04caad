/**
 * @module test/support/browser
 * Debian's headless Chromium driven by playwright-core (no browser download: this machine has
 * no network but the package registries), with the flags that keep it off the network.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Waits for the console page's `data-console-state` to become `state`. */
export async function waitForConsoleState(page: Page, state: string, timeout = 15000): Promise<void> {
  await page.waitForFunction((s) => document.body.dataset.consoleState === s, state, { timeout });
}

/** The URL Nova hands out for `token` on the gateway at `origin`, with more of the page's parameters (`lang=en`). */
export function consolePageUrl(origin: string, token: string, query: string): string {
  return `${origin}/vnc_auto.html?path=${encodeURIComponent(`?token=${token}`)}&${query}`;
}

/**
 * The console page at `url` in a new context of its own (CSP bypassed so that tests may add
 * axe-core; `options` over an en-US locale), once it is connected.
 */
export async function openConsolePage(browser: Browser, url: string, options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ bypassCSP: true, locale: 'en-US', ...options });
  const page = await context.newPage();
  await page.goto(url);
  await waitForConsoleState(page, 'connected');
  return { context, page };
}

/** Colour of a pixel of the noVNC canvas, in canvas coordinates. */
export async function canvasPixel(page: Page, x: number, y: number): Promise<[number, number, number]> {
  return page.evaluate(([px, py]) => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    if (!canvas) throw new Error('no noVNC canvas on the page');
    const d = canvas.getContext('2d')!.getImageData(px!, py!, 1, 1).data;
    return [d[0]!, d[1]!, d[2]!] as [number, number, number];
  }, [x, y]);
}

export async function waitForCanvasPixel(page: Page, x: number, y: number, rgb: readonly [number, number, number], timeout = 15000): Promise<void> {
  const deadline = Date.now() + timeout;
  let last: number[] = [];
  while (Date.now() < deadline) {
    try {
      last = await canvasPixel(page, x, y);
      if (last.every((v, i) => Math.abs(v - rgb[i]!) <= 2)) return;
    } catch {
      // canvas not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`canvas pixel (${x},${y}) is ${JSON.stringify(last)}, expected ${JSON.stringify(rgb)}`);
}
