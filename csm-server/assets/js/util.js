/*
 * csm dashboard — util.js: what every component uses: the port statuses and their symbols,
 * times and durations, numbers, the browser's storage, and fetching JSON from the API.
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.STATUSES = ['free', 'occupied', 'fault', 'offline', 'reserved', 'unavailable', 'unknown'];
  // What the API accepts as a station id.
  csm.STATION_ID = /^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$/;

  // Status symbols (24×24, stroked), so status is never told by colour alone.
  csm.ICONS = {
    free: 'M4.5 12.5l5 5L19.5 7',
    occupied: 'M13 2.5L4.5 13.5h6.5l-1 8 8.5-11h-6.5z',
    fault: 'M12 3.5L2.5 20h19zM12 10v4.5M12 17.2v.1',
    offline: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM5.7 5.7l12.6 12.6',
    reserved: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM12 7v5.5l3.5 2',
    unavailable: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM7.5 12h9',
    unknown: 'M9 9.2a3 3 0 1 1 4.2 2.7c-.8.4-1.2 1-1.2 1.8v.6M12 17.6v.1',
  };

  // A status the dashboard knows (anything else shows as unknown).
  csm.status = (status) => (csm.STATUSES.includes(status) ? status : 'unknown');

  // RFC 3339 → epoch ms (null if missing); fractions beyond milliseconds are cut for older browsers.
  csm.ms = function (iso) {
    const t = iso ? Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1')) : NaN;
    return Number.isNaN(t) ? null : t;
  };

  // Whole minutes as people read them: up to two hours in minutes ("95 分钟"), beyond in
  // days, hours and minutes, leaving out the parts that are zero ("6 天 21 小时 12 分钟").
  // `units`: [day, hour, minute] in the page's language.
  csm.span = function (minutes, units, gap) {
    const m = Math.max(0, Math.round(minutes));
    if (m <= 120) return `${m}${gap}${units[2]}`;
    const parts = [[Math.floor(m / 1440), units[0]], [Math.floor(m / 60) % 24, units[1]], [m % 60, units[2]]];
    return parts.filter(([n]) => n > 0).map(([n, unit]) => `${n}${gap}${unit}`).join(' ');
  };

  // [days, hours, minutes] of a span of milliseconds.
  csm.parts = function (msDiff) {
    const mins = Math.max(0, Math.floor(msDiff / 60000));
    return [Math.floor(mins / 1440), Math.floor(mins / 60) % 24, mins % 60];
  };

  // "3 min ago" of a time, seen from `now`.
  csm.relTime = (t, iso, now) => {
    const at = csm.ms(iso);
    return at === null ? '' : t.ago(...csm.parts(now - at));
  };

  // A clock time (with the date when it is not today).
  csm.clock = function (t, iso, now, withSeconds) {
    const at = csm.ms(iso);
    if (at === null) return '';
    const date = new Date(at);
    const sameDay = new Date(now).toDateString() === date.toDateString();
    const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
    if (withSeconds) opts.second = '2-digit';
    if (!sameDay) { opts.month = 'numeric'; opts.day = 'numeric'; }
    return date.toLocaleString(t.htmlLang, opts);
  };

  csm.num = (t, v, digits) =>
    Number(v).toLocaleString(t.htmlLang, { minimumFractionDigits: digits, maximumFractionDigits: digits });

  csm.has = (v) => v !== null && v !== undefined;

  // A share as a percentage with one decimal ("97.4%").
  csm.percent = (t, share) => `${csm.num(t, share * 100, 1)}%`;

  // Counts of a station's ports by status: always free, occupied and fault in the list (`all`:
  // every status some port has).
  csm.counts = function (station, all) {
    const sum = station.summary || {};
    const shown = ['free', 'occupied', 'fault'];
    return csm.STATUSES.filter((k) => (all ? sum[k] > 0 : shown.includes(k) || sum[k] > 0))
      .map((k) => ({ key: k, n: sum[k] || 0 }));
  };

  csm.readStore = function (key, fallback) {
    try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); } catch (e) { return fallback; }
  };
  csm.writeStore = function (key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: keep in memory only */ }
  };

  // The operator's token, asked for once per browser tab and kept only there (sessionStorage).
  const TOKEN_KEY = 'csm-admin-token';
  csm.token = {
    get() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } },
    set(token) { try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* storage off */ } },
    clear() { try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off */ } },
    // Request options carrying it.
    init(extra) {
      const headers = { Accept: 'application/json', Authorization: 'Bearer ' + csm.token.get() };
      return Object.assign({}, extra, { headers: Object.assign(headers, (extra && extra.headers) || {}) });
    },
  };

  // GET (or `init`) a URL of the API: status, ok, headers and the JSON body (null if none).
  csm.getJson = async function (url, init) {
    const r = await fetch(url, Object.assign({ headers: { Accept: 'application/json' }, cache: 'no-store' }, init));
    let body = null;
    try { body = await r.json(); } catch (e) { /* empty or not JSON */ }
    return { status: r.status, ok: r.ok, headers: r.headers, body };
  };
})();
