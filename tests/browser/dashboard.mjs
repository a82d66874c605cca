#!/usr/bin/env node
// csm dashboard end-to-end test (headless Debian chromium driven by playwright-core).
//
// Usage, against an already running csm-server in demo mode:
//   cd tests/browser && npm ci && CSM_E2E_URL=http://127.0.0.1:5055 node dashboard.mjs
// Env:
//   CSM_E2E_URL          base URL of the server (required)
//   CSM_E2E_SCREENSHOTS  folder for screenshots (default: <repo>/target/e2e)
//   CSM_E2E_CHROMIUM     browser binary (default: /usr/bin/chromium)
//   CSM_E2E_TOKEN        the server's CSM_ADMIN_TOKEN (the alerts panel; default: e2e-token)
// Exits 0 when every check passes, 1 with a message on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OVERALL_TIMEOUT_MS = 150_000;
const WAIT_MS = 20_000;
const CHROMIUM = process.env.CSM_E2E_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.CSM_E2E_SCREENSHOTS
  ? path.resolve(process.env.CSM_E2E_SCREENSHOTS)
  : path.resolve(HERE, '../../target/e2e');
const TOKEN = process.env.CSM_E2E_TOKEN || 'e2e-token';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

let passed = 0;
let browser = null;
let currentStep = 'setup';
function step(name) { currentStep = name; console.log(`- ${name}`); }
const screenshots = [];

function summaryLine(failed) { return `dashboard e2e: ${passed} passed, ${failed} failed`; }

async function fail(message) {
  console.error(`\nFAIL in step "${currentStep}": ${message}`);
  console.error(summaryLine(1));
  process.exitCode = 1;
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
  process.exit(1);
}
function ok(message) { passed += 1; console.log(`  ok  ${message}`); }
function check(cond, message) { if (!cond) throw new Error(message); }

// Poll fn() (async, truthy = done) until it succeeds or the timeout passes.
async function waitUntil(fn, what, timeout = WAIT_MS) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const raw = process.env.CSM_E2E_URL;
if (!raw) await fail('CSM_E2E_URL is not set (base URL of a running csm-server, e.g. http://127.0.0.1:5055)');
let base;
try { base = new URL(raw); } catch (e) { await fail(`CSM_E2E_URL is not a URL: ${raw}`); }
const BASE = base.origin;
if (!fs.existsSync(CHROMIUM)) await fail(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CSM_E2E_CHROMIUM`);
fs.mkdirSync(SHOTS, { recursive: true });

const overall = setTimeout(() => { fail(`overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s exceeded`); }, OVERALL_TIMEOUT_MS);

// Everything the pages request or fail on, across all pages.
const external = [];
const badResponses = [];
const pageErrors = [];
function watch(page) {
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (['data:', 'blob:', 'about:'].includes(u.protocol)) return;
    if (u.origin !== BASE) external.push(req.url());
  });
  page.on('response', (res) => {
    const u = new URL(res.url());
    if (u.origin !== BASE) return;
    const expected = res.status() < 400 || (res.status() === 429 && u.pathname.endsWith('/refresh'));
    if (!expected) badResponses.push(`${res.status()} ${res.request().method()} ${u.pathname}`);
  });
  page.on('requestfailed', (req) => {
    const u = new URL(req.url());
    // the event stream is cut when a page closes or navigates; that is not a failure
    if (u.pathname === '/api/events') return;
    const err = req.failure() ? req.failure().errorText : 'failed';
    if (err !== 'net::ERR_ABORTED') badResponses.push(`${err} ${req.method()} ${u.pathname}`);
  });
  page.on('pageerror', (err) => pageErrors.push(String(err && err.stack ? err.stack : err)));
  // Console errors of the page's own (a failed load is the browser's note of a response,
  // judged above, e.g. the expected 429 of a refresh during its cool-down).
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${message.text()}`);
  });
}
function checkHealthy(where) {
  check(external.length === 0, `${where}: requests left the server's origin ${BASE}:\n    ${external.join('\n    ')}`);
  check(badResponses.length === 0, `${where}: failed requests to the server:\n    ${badResponses.join('\n    ')}`);
  check(pageErrors.length === 0, `${where}: uncaught errors in the page:\n    ${pageErrors.join('\n    ')}`);
}
const items = (page) => page.locator('[data-testid="station-item"]');
const tiles = (page) => page.locator('[data-testid="port-tile"]');
const bodyText = (page) => page.evaluate(() => document.body.innerText);
const htmlLang = (page) => page.evaluate(() => document.documentElement.lang);
const heatCells = (page) => page.locator('[data-testid="heat-map"]:visible [data-testid="heat-cell"]');

// The open station's history: a timeline per port, a drawn chart for each port with
// measurements, the 7-day occupancy chart and a 7 × 24 heat map. Returns what it found.
async function checkStationHistory(page, where) {
  await page.locator('[data-testid="station-history"] [data-testid="timeline"]').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  const rows = await page.locator('[data-testid="port-history"]').count();
  const spans = await page.locator('[data-testid="timeline"] .timeline-span').count();
  check(spans >= rows, `${where}: ${spans} status spans for ${rows} port timelines`);
  await page.locator('[data-testid="reading-chart"] canvas').first().waitFor({ state: 'attached', timeout: WAIT_MS });
  const charts = await page.locator('[data-testid="reading-chart"]').count();
  const drawn = await page.locator('[data-testid="reading-chart"] canvas').count();
  check(charts > 0 && drawn === charts, `${where}: ${drawn} of ${charts} reading charts drawn`);
  await page.locator('[data-testid="occupancy-chart"] canvas').waitFor({ state: 'attached', timeout: WAIT_MS });
  const cells = await heatCells(page).count();
  check(cells === 7 * 24, `${where}: the heat map has ${cells} cells, expected 7 × 24`);
  const filled = await page.locator('[data-testid="heat-map"]:visible [data-testid="heat-cell"]:not(.heat-empty)').count();
  check(filled > 0, `${where}: every heat map cell is empty`);
  return { rows, charts, cells, filled };
}

async function run() {
  console.log(`csm dashboard e2e against ${BASE} (browser ${CHROMIUM})`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });

  // ---- 1. wide screen: list + first station open ----
  step('1. dashboard at 1440x900');
  const wide = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: 'Asia/Shanghai',
    permissions: ['notifications'] });
  // Records the notifications the page shows ("notify me").
  await wide.addInitScript(() => {
    const Real = window.Notification;
    if (!Real) return;
    window.__csmNotes = [];
    window.Notification = class extends Real {
      constructor(title, options) { super(title, options); window.__csmNotes.push({ title, body: options && options.body }); }
    };
  });
  const page = await wide.newPage();
  watch(page);
  await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await items(page).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  await tiles(page).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  const stationCount = await items(page).count();
  const tileCount = await tiles(page).count();
  ok(`1440x900: ${stationCount} station item(s) and ${tileCount} port tile(s) rendered, first station opened automatically`);
  const openId = await waitUntil(() => page.evaluate(() => (/^#\/station\/(.+)$/.exec(location.hash) || [])[1]), 'the URL hash #/station/<id>');
  const title = (await page.locator('[data-testid="station-title"]').innerText()).trim();
  check(title.length > 0, 'station title is empty');
  ok(`URL hash is #/station/${openId}, station title "${title}"`);
  const zhText = await bodyText(page);
  check(/空闲|充电中/.test(zhText), 'page text is not Chinese: neither "空闲" nor "充电中" found');
  check((await htmlLang(page)) === 'zh-CN', `<html lang> is "${await htmlLang(page)}", expected "zh-CN"`);
  ok('Chinese by default (<html lang="zh-CN">, status words 空闲/充电中 present)');
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: WAIT_MS });
  ok(`live updates connected over /api/events (indicator "${(await page.locator('[data-testid="connection"]').innerText()).trim()}")`);

  // ---- 2. no request left the machine ----
  step('2. requests stay on the server');
  checkHealthy('initial load');
  ok(`no request to any origin other than ${BASE}, no failed request, no page error`);

  // ---- 3. screenshot ----
  step('3. screenshot');
  const wideShot = path.join(SHOTS, 'dashboard-1440x900.png');
  await page.screenshot({ path: wideShot });
  screenshots.push(wideShot);
  ok(`screenshot ${wideShot}`);

  // ---- 3b. the station's history and the estimates ----
  step('3b. station history at 1440x900');
  const found = await checkStationHistory(page, '1440x900');
  const estimates = await page.locator('[data-testid="free-estimate"]').allInnerTexts();
  const occupied = await page.locator('[data-testid="port-tile"][data-status="occupied"]').count();
  check(estimates.every((text) => /约 \d+ 分钟后空闲|即将空闲/.test(text)), `estimates read ${JSON.stringify(estimates)}`);
  check(occupied === 0 || estimates.length > 0, `${occupied} occupied ports and no estimate`);
  const historyShot = path.join(SHOTS, 'station-history-1440x900.png');
  // The station view scrolls inside the window: a tall window shows all of it at once.
  await page.setViewportSize({ width: 1440, height: 3400 });
  await page.screenshot({ path: historyShot });
  await page.setViewportSize({ width: 1440, height: 900 });
  screenshots.push(historyShot);
  const strip = page.locator('[data-testid="availability-strip"] li');
  await strip.first().waitFor({ state: 'attached', timeout: WAIT_MS });
  const stripDays = await strip.count();
  const stripTitle = await strip.last().getAttribute('title');
  check(stripDays >= 1 && stripDays <= 31 && /可用率 \d+(\.\d)?%/.test(stripTitle || ''), `the availability strip: ${stripDays} days, "${stripTitle}"`);
  ok(`availability: a strip of ${stripDays} days ("${stripTitle}")`);
  ok(`history: ${found.rows} port timelines, ${found.charts} reading charts drawn, 7-day chart, heat map ${found.cells} cells (${found.filled} with data), ${estimates.length} estimates on ${occupied} occupied ports ("${estimates[0] || ''}"), screenshot ${historyShot}`);

  step('3c. fleet page at 1440x900');
  await page.locator('[data-testid="fleet-link"]').click();
  await page.locator('[data-testid="fleet-view"] [data-testid="fleet-figures"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.locator('[data-testid="fleet-chart"] canvas').waitFor({ state: 'attached', timeout: WAIT_MS });
  check((await heatCells(page).count()) === 7 * 24, `the fleet heat map has ${await heatCells(page).count()} cells`);
  check((await page.evaluate(() => location.hash)) === '#/fleet', 'the URL is not #/fleet');
  await page.locator('[data-testid="days-1"]').click();
  await waitUntil(async () => (await page.locator('[data-testid="days-1"]').getAttribute('aria-pressed')) === 'true', 'the 1-day choice');
  // The alerts panel: a rule made through the API shows once the admin token is given.
  const api = async (route, body) => {
    const r = await fetch(`${BASE}${route}`, { method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` } });
    check(r.status === 201, `POST ${route} answered ${r.status}: ${await r.text()}`);
  };
  await api('/api/alerts/channels', { name: 'e2e', kind: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'e2e' });
  await api('/api/alerts/rules', { kind: 'fault', stations: 'all', min_secs: 600, channel: 'e2e' });
  await page.locator('[data-testid="admin-token"]').fill(TOKEN);
  await page.locator('[data-testid="admin-token"]').press('Enter');
  await page.locator('[data-testid="alert-rules"] tbody tr').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  const ruleRows = await page.locator('[data-testid="alert-rules"] tbody tr').count();
  check(ruleRows === 1, `the alerts panel lists ${ruleRows} rules, expected 1`);
  await page.locator('[data-testid="below-availability"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  const belowText = await page.locator('[data-testid="below-availability"]').innerText();
  check(/近 7 天可用率低于 95(\.0)?%/.test(belowText), `the availability review reads ${belowText}`);
  // Long durations read in days, hours and minutes; the daily chart labels each day once.
  const figureText = await page.locator('[data-testid="fleet-figures"]').innerText();
  const rawMinutes = [...figureText.matchAll(/(\d+) 分钟/g)].map((m) => Number(m[1]));
  check(rawMinutes.every((m) => m <= 120), `a duration over two hours in minutes: ${JSON.stringify(rawMinutes)} in ${figureText}`);
  const spans = await page.evaluate(() => [window.csm.span(9912, ['天', '小时', '分钟'], ' '), window.csm.span(95, ['d', 'h', 'min'], ' ')]);
  check(spans[0] === '6 天 21 小时 12 分钟' && spans[1] === '95 min', `durations read ${JSON.stringify(spans)}`);
  const dayLabels = await page.evaluate(() => {
    const daily = Array.from({ length: 30 }, (_, i) => ({ date: new Date(Date.UTC(2026, 10, 1 + i)).toISOString().slice(0, 10) }));
    const x = daily.map((d) => Date.parse(d.date + 'T12:00:00Z') / 1000);
    const t = window.csm.I18N.zh;
    const axis = window.csm.dayAxis(t, daily, x);
    const wide = axis.values({ bbox: { width: 2000 * (window.devicePixelRatio || 1) } }, axis.splits()).filter(Boolean);
    const narrow = axis.values({ bbox: { width: 300 * (window.devicePixelRatio || 1) } }, axis.splits()).filter(Boolean);
    return { splits: axis.splits().length, wide, narrow };
  });
  check(dayLabels.splits === 30 && new Set(dayLabels.wide).size === dayLabels.wide.length && dayLabels.wide.length === 30,
    `the day axis at 2000 px: ${JSON.stringify(dayLabels.wide)}`);
  check(new Set(dayLabels.narrow).size === dayLabels.narrow.length && dayLabels.narrow.length < 30,
    `the day axis at 300 px: ${JSON.stringify(dayLabels.narrow)}`);
  const fleetShot = path.join(SHOTS, 'fleet-1440x900.png');
  await page.setViewportSize({ width: 1440, height: 1500 });
  await page.screenshot({ path: fleetShot });
  await page.setViewportSize({ width: 1440, height: 900 });
  screenshots.push(fleetShot);
  const ranked = page.locator('[data-testid="ranked-station"]');
  let rankedNote = 'no station in fault or offline in the period';
  if ((await ranked.count()) > 0) {
    const href = await ranked.first().getAttribute('href');
    await ranked.first().click();
    await tiles(page).first().waitFor({ state: 'visible', timeout: WAIT_MS });
    check((await page.evaluate(() => location.hash)) === href, `the ranked link went to ${await page.evaluate(() => location.hash)}, not ${href}`);
    rankedNote = `its first ranked station (${href}) opens`;
  }
  await page.evaluate((id) => { location.hash = '#/station/' + encodeURIComponent(id); }, openId);
  await waitUntil(async () => (await page.locator('[data-testid="station-title"]').innerText()).trim() === title, `station ${openId} open again`);
  ok(`fleet page: figures, daily chart, heat map 168 cells, 1/7/30-day choice, ${rankedNote}, the alerts panel lists the rule made through the API, durations as "${spans[0]}", each day labelled once (${dayLabels.wide.length} of 30 at 2000 px, ${dayLabels.narrow.length} at 300 px), screenshot ${fleetShot}`);

  step('3d. notify me');
  const notify = page.locator('[data-testid="notify-button"]');
  await notify.click();
  await waitUntil(async () => (await notify.getAttribute('aria-pressed')) === 'true', '"notify me" switched on');
  const notes = await waitUntil(() => page.evaluate(() => (window.__csmNotes || []).length ? window.__csmNotes : null),
    'a notification when a port of the open station frees', 45_000);
  check(notes[0].title.includes(title) && /\d+ 号口现在空闲/.test(notes[0].body || ''), `the notification reads ${JSON.stringify(notes[0])}`);
  await notify.click();
  await waitUntil(async () => (await notify.getAttribute('aria-pressed')) === 'false', '"notify me" switched off');
  ok(`"notify me": the browser's permission, then "${notes[0].title}: ${notes[0].body}" when a port freed; switched off again`);

  // ---- 4. language switch, kept across reload ----
  step('4. language toggle');
  await page.locator('[data-testid="lang-toggle"]').click();
  await waitUntil(async () => (await htmlLang(page)) === 'en', '<html lang="en"> after clicking the language toggle');
  await waitUntil(async () => /Free|Charging/.test(await bodyText(page)), 'English status words ("Free" or "Charging")');
  await page.reload({ waitUntil: 'domcontentloaded' });
  await tiles(page).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  check((await htmlLang(page)) === 'en', 'the English choice was not kept after a reload (localStorage)');
  await page.locator('[data-testid="lang-toggle"]').click();
  await waitUntil(async () => (await htmlLang(page)) === 'zh-CN', '<html lang="zh-CN"> after switching back');
  await waitUntil(async () => /空闲|充电中/.test(await bodyText(page)), 'Chinese text after switching back');
  ok('language toggle: English ("Free"/"Charging", lang="en") kept across reload, then back to Chinese');

  // ---- 5. search filters the list ----
  step('5. search and favourites');
  const stations = await items(page).evaluateAll((els) => els.map((el) => ({
    id: el.dataset.stationId, text: el.innerText.toLowerCase(),
  })));
  const total = stations.length;
  const search = page.locator('[data-testid="search"]');
  // a station whose id is not part of another station's id, typed in lower case (search ignores case)
  const target = stations.slice().reverse().find((s) => !stations.some((o) => o !== s && o.id.toLowerCase().includes(s.id.toLowerCase()))) || stations[0];
  const idQuery = target.id.toLowerCase();
  const mustHide = stations.some((s) => !s.id.toLowerCase().includes(idQuery) && !s.text.includes(idQuery));
  await search.fill(idQuery);
  const shownIds = await waitUntil(async () => {
    const ids = await items(page).evaluateAll((els) => els.map((el) => el.dataset.stationId));
    return ids.includes(target.id) && (!mustHide || ids.length < total) ? ids : null;
  }, `the list to filter to station ${target.id} for query "${idQuery}"`);
  await search.fill('zz-no-such-station-zz');
  await waitUntil(async () => (await items(page).count()) === 0, 'an empty list for a query that matches nothing');
  await search.fill('');
  await waitUntil(async () => (await items(page).count()) === total, `all ${total} stations back after clearing the search`);
  ok(`search: "${idQuery}" shows ${shownIds.length} of ${total} (incl. ${target.id}), nonsense shows none, clearing restores ${total}`);

  const star = page.locator(`[data-testid="station-item"][data-station-id="${target.id}"] [data-testid="favourite-toggle"]`);
  await star.click();
  await waitUntil(async () => (await star.getAttribute('aria-pressed')) === 'true', 'the star to be pressed');
  await waitUntil(async () => (await items(page).first().getAttribute('data-station-id')) === target.id, `favourite ${target.id} to be listed first`);
  await page.locator('[data-testid="fav-filter"]').click();
  await waitUntil(async () => (await items(page).count()) === 1, 'only the one favourite with "只看收藏" on');
  await page.locator('[data-testid="fav-filter"]').click();
  await star.click();
  await waitUntil(async () => (await star.getAttribute('aria-pressed')) === 'false' && (await items(page).count()) === total, 'the favourite to be removed again');
  ok(`favourites: starring ${target.id} lists it first, "只看收藏" shows only it, unstarring restores the list`);

  step('5b. an OCPP charger of the demo');
  await page.goto(`${BASE}/#/station/SEV-0001`, { waitUntil: 'domcontentloaded' });
  const ocppLine = page.locator('[data-testid="ocpp-line"]');
  await ocppLine.waitFor({ state: 'visible', timeout: WAIT_MS });
  const ocppText = await waitUntil(async () => {
    const text = await ocppLine.innerText();
    return text.includes('已连接') && text.includes('sim-1') && text.includes('OCPP 1.6') ? text : null;
  }, 'the demo charger SEV-0001 shown connected, with its OCPP version and firmware');
  check((await tiles(page).count()) === 2, `SEV-0001 shows ${await tiles(page).count()} port tiles, expected its 2 connectors`);
  // The operator's menu: the token (already given this tab on the fleet page), a command and
  // the charger's answer, then the frames in the message log.
  const panel = page.locator('[data-testid="ocpp-panel"]');
  await panel.waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.locator('[data-testid="command-form"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.locator('[data-testid="command-select"]').selectOption('GetConfiguration');
  await page.locator('[data-testid="command-send"]').click();
  const configuration = page.locator('[data-testid="configuration"] tr');
  await configuration.first().waitFor({ state: 'visible', timeout: WAIT_MS });
  const keys = await configuration.allInnerTexts();
  check(keys.some((k) => k.includes('HeartbeatInterval')), `the configuration read: ${JSON.stringify(keys)}`);
  await page.locator('[data-testid="command-select"]').selectOption('Reset');
  await page.locator('[data-testid="command-send"]').click();
  await waitUntil(async () => /Reset.*Accepted/s.test(await page.locator('[data-testid="command-answer"]').innerText()), 'the Reset answered Accepted');
  const frames = await waitUntil(async () => {
    const texts = await page.locator('[data-testid="message-log"] li').allInnerTexts();
    return texts.some((f) => f.includes('"Reset"')) && texts.some((f) => f.includes('GetConfiguration')) ? texts : null;
  }, 'the Reset and GetConfiguration frames in the message log');
  const ocppShot = path.join(SHOTS, 'ocpp-operator-1440x900.png');
  await page.setViewportSize({ width: 1440, height: 2600 });
  await panel.screenshot({ path: ocppShot });
  await page.setViewportSize({ width: 1440, height: 900 });
  screenshots.push(ocppShot);
  ok(`operator's menu on SEV-0001: GetConfiguration shows ${keys.length} keys, Reset answered Accepted, the message log shows ${frames.length} frames, screenshot ${ocppShot}`);
  await page.goto(`${BASE}/#/station/${openId}`, { waitUntil: 'domcontentloaded' });
  await tiles(page).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  ok(`OCPP charger SEV-0001: "${ocppText.trim()}", 2 port tiles`);

  // ---- 6. manual refresh and cool-down ----
  step('6. manual refresh and cool-down');
  const refreshButton = page.locator('[data-testid="refresh-button"]');
  await refreshButton.waitFor({ state: 'visible', timeout: WAIT_MS });
  await waitUntil(() => refreshButton.isEnabled(), 'the refresh button to be enabled');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/refresh'), { timeout: WAIT_MS }),
    refreshButton.click(),
  ]);
  const refreshPath = new URL(resp.url()).pathname;
  check(refreshPath === `/api/stations/${encodeURIComponent(openId)}/refresh` || refreshPath === `/api/stations/${openId}/refresh`,
    `refresh went to ${refreshPath}, expected /api/stations/${openId}/refresh`);
  check([200, 429].includes(resp.status()), `refresh answered ${resp.status()}, expected 200 or 429`);
  // read the countdown and the button state together: a short Retry-After may end the cool-down soon
  const cd = await waitUntil(() => page.evaluate(() => {
    const c = document.querySelector('[data-testid="cooldown"]');
    const b = document.querySelector('[data-testid="refresh-button"]');
    return c && c.offsetParent !== null ? { text: c.textContent.trim(), disabled: !!(b && b.disabled) } : null;
  }), 'the cool-down countdown [data-testid="cooldown"]', 5000);
  const cdText = cd.text;
  check(/\d+/.test(cdText), `cool-down text "${cdText}" has no number of seconds`);
  check(cd.disabled, 'the refresh button is not disabled during the cool-down');
  ok(`refresh: POST ${refreshPath} → ${resp.status()}, button disabled with countdown "${cdText}"`);
  await page.close();
  await wide.close();

  // ---- 7. phone: list first, then the station ----
  step('7. phone at 390x844');
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, timezoneId: 'Asia/Shanghai',
  });
  const mobile = await phone.newPage();
  watch(mobile);
  await mobile.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await items(mobile).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  check((await tiles(mobile).count()) === 0, 'on a phone the station list should come first (port tiles shown before choosing a station)');
  const listWidth = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(listWidth <= 390, `station list scrolls sideways at 390 px: scrollWidth ${listWidth}`);
  const phoneItem = items(mobile).first();
  const phoneId = await phoneItem.getAttribute('data-station-id');
  await phoneItem.click();
  await tiles(mobile).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  check(!(await items(mobile).first().isVisible()), 'on a phone the list should be hidden while a station is open');
  check((await mobile.evaluate(() => location.hash)) === `#/station/${encodeURIComponent(phoneId)}`, 'URL hash did not follow the selected station');
  await mobile.waitForTimeout(300); // let fonts and layout settle for the picture
  const phoneShot = path.join(SHOTS, 'dashboard-390x844.png');
  await mobile.screenshot({ path: phoneShot });
  screenshots.push(phoneShot);
  const scrollWidth = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(scrollWidth <= 390, `horizontal scrolling at 390 px: document scrollWidth is ${scrollWidth}`);
  ok(`390x844: list first, station ${phoneId} opens with ${await tiles(mobile).count()} tiles, scrollWidth ${scrollWidth} <= 390, screenshot ${phoneShot}`);
  const phoneHistory = await checkStationHistory(mobile, '390x844');
  const phoneHistoryShot = path.join(SHOTS, 'station-history-390x844.png');
  await mobile.screenshot({ path: phoneHistoryShot, fullPage: true });
  screenshots.push(phoneHistoryShot);
  const historyWidth = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(historyWidth <= 390, `horizontal scrolling with the history at 390 px: scrollWidth ${historyWidth}`);
  ok(`390x844 history: ${phoneHistory.rows} timelines, ${phoneHistory.charts} charts drawn, heat map ${phoneHistory.cells} cells, scrollWidth ${historyWidth}, screenshot ${phoneHistoryShot}`);
  await mobile.locator('[data-testid="back-button"]').click();
  await items(mobile).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  ok('phone back button returns to the station list');
  await mobile.locator('[data-testid="fleet-link"]').click();
  await mobile.locator('[data-testid="fleet-view"] [data-testid="fleet-figures"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await mobile.locator('[data-testid="fleet-chart"] canvas').waitFor({ state: 'attached', timeout: WAIT_MS });
  check(!(await items(mobile).first().isVisible()), 'on a phone the list should be hidden on the fleet page');
  check((await heatCells(mobile).count()) === 7 * 24, `the phone's fleet heat map has ${await heatCells(mobile).count()} cells`);
  const fleetWidth = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(fleetWidth <= 390, `horizontal scrolling on the fleet page at 390 px: scrollWidth ${fleetWidth}`);
  // The operator's menu on a phone: asks for the token (a new tab), fits the width.
  await mobile.goto(`${BASE}/#/station/SEV-0001`, { waitUntil: 'domcontentloaded' });
  await mobile.locator('[data-testid="operator-token"]').fill(TOKEN);
  await mobile.locator('[data-testid="operator-token"]').press('Enter');
  await mobile.locator('[data-testid="command-form"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await mobile.locator('[data-testid="message-log"] li').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  const operatorWidth = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(operatorWidth <= 390, `horizontal scrolling with the operator's menu at 390 px: scrollWidth ${operatorWidth}`);
  const phoneOcppShot = path.join(SHOTS, 'ocpp-operator-390x844.png');
  await mobile.locator('[data-testid="ocpp-panel"]').screenshot({ path: phoneOcppShot });
  screenshots.push(phoneOcppShot);
  ok(`390x844 operator's menu: token asked once for the tab, the command form and the message log, scrollWidth ${operatorWidth}, screenshot ${phoneOcppShot}`);
  await mobile.goto(`${BASE}/#/fleet`, { waitUntil: 'domcontentloaded' });
  await mobile.locator('[data-testid="fleet-view"] [data-testid="fleet-figures"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await mobile.locator('[data-testid="fleet-chart"] canvas').waitFor({ state: 'attached', timeout: WAIT_MS });
  const phoneFleetShot = path.join(SHOTS, 'fleet-390x844.png');
  await mobile.screenshot({ path: phoneFleetShot, fullPage: true });
  screenshots.push(phoneFleetShot);
  await mobile.locator('[data-testid="fleet-view"] .back').click();
  await items(mobile).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  ok(`390x844 fleet page: figures, chart, heat map 168 cells, scrollWidth ${fleetWidth}, back to the list, screenshot ${phoneFleetShot}`);

  // ---- 8. a large fleet: the server searches and pages the list; the page asks 200 at a time ----
  step('8. a fleet of 450 stations');
  const fleet = await phone.newPage();
  watch(fleet);
  const real = await (await fetch(`${BASE}/api/stations`)).json();
  const template = real.stations[0];
  const many = Array.from({ length: 450 }, (_, i) => {
    const id = `F${String(i + 1).padStart(4, '0')}`;
    return { ...template, station_id: id, name: `Fleet ${id}` };
  });
  // Only the list is replaced, answered as the API does (q, ids, limit, offset); a narrow
  // screen opens no station by itself.
  const asked = [];
  await fleet.route(/\/api\/stations(\?.*)?$/, (route) => {
    const url = new URL(route.request().url());
    asked.push(url.search);
    const q = (url.searchParams.get('q') || '').toLowerCase();
    const ids = url.searchParams.has('ids') ? url.searchParams.get('ids').split(',') : null;
    const matching = many.filter((s) => (!q || s.station_id.toLowerCase().includes(q) || s.name.toLowerCase().includes(q))
      && (!ids || ids.includes(s.station_id)));
    const offset = Number(url.searchParams.get('offset') || 0);
    const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : matching.length;
    return route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ ...real, stations: matching.slice(offset, offset + limit), total: matching.length }),
    });
  });
  await fleet.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  const more = fleet.locator('[data-testid="list-more"]');
  await more.waitFor({ state: 'visible', timeout: WAIT_MS });
  check((await items(fleet).count()) === 200, `drew ${await items(fleet).count()} of 450 stations, expected the first 200`);
  check((await more.innerText()).includes('200 / 450'), `the note says "${await more.innerText()}", expected "200 / 450"`);
  await more.locator('button').click();
  await waitUntil(async () => (await items(fleet).count()) === 400, '400 stations after "show more"');
  await fleet.locator('[data-testid="search"]').fill('F0449');
  await waitUntil(async () => (await items(fleet).count()) === 1, 'search finds F0449 among all 450');
  check((await more.count()) === 0, 'the "show more" note stays after a search that matches one station');
  check(asked.length >= 3 && asked.every((search) => /[?&](limit|ids)=/.test(search)),
    `every list request asks for a page or for named stations: ${JSON.stringify(asked)}`);
  check(asked.some((search) => /[?&]q=F0449/.test(search)), `the search went to the server: ${JSON.stringify(asked)}`);
  check(asked.every((search) => /[?&]view=summary/.test(search)), `the list asks for the light view (no ports): ${JSON.stringify(asked)}`);
  ok(`450 stations: 200 drawn with "显示 200 / 450", 400 after "show more", the server's search finds station 449; ${asked.length} list requests, none for the whole fleet`);
  await fleet.close();

  // ---- 9. API docs render offline ----
  step('9. API docs at /api/docs');
  await mobile.setViewportSize({ width: 1280, height: 900 });
  await mobile.goto(`${BASE}/api/docs`, { waitUntil: 'domcontentloaded' });
  await mobile.locator('.swagger-ui .info .title').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  await mobile.locator('.swagger-ui .opblock').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  ok('API docs at /api/docs render the OpenAPI document with Swagger UI');

  step('10. no outside requests over the whole run');
  checkHealthy('whole run');
  ok(`still no request outside ${BASE} and no failed request or page error over the whole run`);
  await phone.close();
  await browser.close();
  browser = null;
}

try {
  await run();
} catch (e) {
  await fail(e && e.message ? e.message : String(e));
}
clearTimeout(overall);
console.log(`\nscreenshots:\n  ${screenshots.join('\n  ')}`);
console.log(summaryLine(0));
