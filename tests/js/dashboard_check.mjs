// Loads examples/dashboard/index.html in headless Chromium (the system browser, driven by
// playwright-core) and waits until live sensor values and chart points appear on the page.
// The page and MQTT.js's browser bundle are served by a tiny HTTP server on 127.0.0.1 started
// here, so nothing is fetched from the internet.
// Env: BROKER_WS_URL (required), DASHBOARD_DIR (examples/dashboard), CHROMIUM (/usr/bin/chromium),
// SCREENSHOT (optional PNG path), TIMEOUT_MS (60000).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const brokerUrl = process.env.BROKER_WS_URL;
const pageDir = process.env.DASHBOARD_DIR || path.join(here, '..', '..', 'examples', 'dashboard');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const timeout = Number(process.env.TIMEOUT_MS || '60000');
const mqttBundle = path.join(here, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js');

const files = {
  '/index.html': [path.join(pageDir, 'index.html'), 'text/html; charset=utf-8'],
  '/mqtt.min.js': [mqttBundle, 'text/javascript; charset=utf-8'],
};
const server = http.createServer((req, res) => {
  const entry = files[new URL(req.url, 'http://x').pathname];
  if (!entry) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': entry[1] });
  fs.createReadStream(entry[0]).pipe(res);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/index.html?broker=${encodeURIComponent(brokerUrl)}`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
console.log(`browser ${browser.version()}`);
const page = await browser.newPage();
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));

let ok = false;
try {
  // One retry of the whole load-and-connect step: a cold browser can miss the first time.
  for (let attempt = 1; attempt <= 2 && !ok; attempt++) {
    try {
      await page.goto(pageUrl, { timeout, waitUntil: 'load' });
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected', null, { timeout });
      ok = true;
    } catch (err) {
      console.log(`attempt ${attempt}: ${err.message.split('\n')[0]}`);
    }
  }
  if (!ok) throw new Error('the page never connected to the broker');
  console.log('OK page connected to the broker');

  const row = 'tr[data-topic="iot/sensors/temperature"]';
  await page.waitForSelector(`${row} td.temperature:text-is("25.4")`, { timeout });
  const values = await page.$eval(row, (tr) => Object.fromEntries([...tr.cells].map((td) => [td.className, td.textContent])));
  console.log(`OK row shown: ${JSON.stringify(values)}`);
  if (values.sensor !== 'sensor_001' || values.humidity !== '60.2') throw new Error(`row ${JSON.stringify(values)}`);

  await page.waitForFunction(() => Number(document.getElementById('chart').dataset.points) >= 2, null, { timeout });
  const points = await page.$eval('#chart', (c) => c.dataset.points);
  console.log(`OK chart has ${points} points`);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  console.log('DONE');
} catch (err) {
  ok = false;
  console.error(`FAIL ${err.message}`);
  console.error(`page text:\n${await page.evaluate(() => document.body?.innerText).catch((e) => e.message)}`);
  console.error(consoleLines.join('\n'));
} finally {
  await browser.close().catch(() => {});
  server.close();
}
process.exit(ok ? 0 : 1);
