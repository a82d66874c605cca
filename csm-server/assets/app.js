/*
 * csm dashboard — app.js
 *
 * The web dashboard of csm (charging station monitor), served by csm-server at
 * /assets/app.js. Plain script, no build step: Vue 3 comes from the global build
 * /assets/vendor/vue.global.prod.js and the template is the <script type="text/x-template">
 * in index.html.
 *
 * Talks to the same-origin JSON API:
 *   GET  /api/stations?view=summary&limit=&q=&ids=
 *                                      a page of the station list with summaries, without
 *                                      ports (searched and paged by the server, never read whole)
 *   GET  /api/stations/{id}            one station with its ports
 *   POST /api/stations/{id}/refresh    manual refresh (429 + Retry-After while cooling down)
 *   GET  /api/events                   Server-Sent Events: `hello`, `station`, `lagged`
 * Falls back to polling when the event stream keeps failing.
 */
(function () {
  'use strict';

  const STATUSES = ['free', 'occupied', 'fault', 'offline', 'reserved', 'unknown'];
  const LIST_COUNTS = ['free', 'occupied', 'fault'];   // always shown in the list
  const WIDE_QUERY = '(min-width: 768px)';
  const STORE_LANG = 'csm.lang';
  const STORE_FAVS = 'csm.favourites';
  const DEFAULT_COOLDOWN_S = 10;
  const POLL_MS = 10000;        // polling fallback, list + open station
  const SSE_RETRY_MS = 60000;   // while polling, try the event stream again
  const SSE_MAX_ERRORS = 3;     // errors without a successful open before falling back
  const STATION_MS = 15000;     // re-fetch the open station (live readings)
  const LIST_MS = 30000;        // re-fetch the list
  const LIST_PAGE = 200;        // stations asked for at once; more on request (large fleets)
  const LIST_MAX = 10000;       // the largest page the API serves
  const SEARCH_MS = 250;        // typing pause before the list is asked for again
  const FAV_CHUNK = 100;        // favourites named in one request (keeps the URL short)
  const STATION_ID = /^[A-Za-z0-9_.:-]{1,64}$/;   // what the API accepts as a station id
  const RELOAD_MS = 1000;       // a station the list does not know: reload at most this often
  const FLASH_MS = 2200;

  // All UI text. Entries that take values are functions.
  const I18N = {
    zh: {
      htmlLang: 'zh-CN', other: 'English', otherLang: 'en',
      appTitle: '充电桩监控', appTitleShort: '充电桩监控',
      status: { free: '空闲', occupied: '充电中', fault: '故障', offline: '离线', reserved: '已预约', unknown: '未知' },
      forDur: (d) => d, justNow: '· 刚刚',
      dur: (d, h, m) => (d ? `${d} 天 ${h} 小时` : h ? `${h} 小时 ${m} 分钟` : `${m} 分钟`),
      ago: (d, h, m) => (d ? `${d} 天前` : h ? `${h} 小时前` : m ? `${m} 分钟前` : '刚刚'),
      conn: { live: '实时', polling: '轮询', offline: '离线' },
      connTitle: { live: '实时推送已连接', polling: '实时推送不可用，每 10 秒轮询一次', offline: '无法连接服务器' },
      stations: '站点', searchLabel: '搜索站点', searchPlaceholder: '搜索名称、编号或地址',
      favOnly: '只看收藏', favLabel: (name) => `收藏 ${name}`,
      loading: '加载中…', retry: '重试', listFailed: '无法加载站点列表。',
      noMatch: '没有匹配的站点。', noStations: '还没有站点。',
      updated: (when) => `更新于 ${when}`, updatedAt: (clock, rel) => `更新于 ${clock}（${rel}）`, never: '从未更新',
      stale: '数据过期', unreachable: '无法连接', disabled: '已停用',
      staleBanner: '数据可能已过期：最近一次刷新未成功或太久没有更新。',
      unreachableBanner: '无法连接该站点：', lastChecked: (when) => `（最后检查 ${when}）`,
      total: (n) => `共 ${n} 个`, back: '站点列表', pickStation: '请从列表中选择一个站点。',
      notFound: (id) => `找不到站点 ${id}。`, loadFailed: '无法加载站点数据。',
      port: '端口',
      voltage: '电压', current: '电流', power: '功率', energy: '电量', endsAt: '预计结束',
      noPorts: '该站点没有端口数据。',
      refresh: '刷新', refreshAria: (name) => `刷新 ${name}`, refreshing: '刷新中…',
      cooldown: (s) => `${s} 秒后可刷新`,
      refreshFailed: (e) => `刷新失败：${e}`, stillUnreachable: '刷新失败：站点仍无法连接。', refreshDone: '已刷新', tooSoon: '刷新太频繁，请稍候。',
      networkError: '网络错误', portChange: (n, a, b) => `端口 ${n}：${a} → ${b}`,
      apiDocs: 'API 文档',
      showing: (n, total) => `显示 ${n} / ${total} 个站点,搜索可缩小范围。`, showMore: '显示更多',
    },
    en: {
      htmlLang: 'en', other: '中文', otherLang: 'zh-CN',
      appTitle: 'Charging Station Monitor', appTitleShort: 'Charging Monitor',
      status: { free: 'Free', occupied: 'Charging', fault: 'Fault', offline: 'Offline', reserved: 'Reserved', unknown: 'Unknown' },
      forDur: (d) => `for ${d}`, justNow: '· just now',
      dur: (d, h, m) => (d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`),
      ago: (d, h, m) => (d ? `${d} d ago` : h ? `${h} h ago` : m ? `${m} min ago` : 'just now'),
      conn: { live: 'Live', polling: 'Polling', offline: 'Offline' },
      connTitle: { live: 'Live updates connected', polling: 'Live updates unavailable, polling every 10 s', offline: 'Cannot reach the server' },
      stations: 'Stations', searchLabel: 'Search stations', searchPlaceholder: 'Name, ID or address',
      favOnly: 'Favourites only', favLabel: (name) => `Favourite ${name}`,
      loading: 'Loading…', retry: 'Retry', listFailed: 'Could not load the station list.',
      noMatch: 'No matching stations.', noStations: 'No stations yet.',
      updated: (when) => `Updated ${when}`, updatedAt: (clock, rel) => `Updated ${clock} (${rel})`, never: 'Never updated',
      stale: 'Stale', unreachable: 'Unreachable', disabled: 'Disabled',
      staleBanner: 'Data may be out of date: the last refresh failed or has not happened for a while.',
      unreachableBanner: 'Station unreachable: ', lastChecked: (when) => ` (last checked ${when})`,
      total: (n) => `${n} total`, back: 'Stations', pickStation: 'Pick a station from the list.',
      notFound: (id) => `Station ${id} not found.`, loadFailed: 'Could not load the station.',
      port: 'Port',
      voltage: 'Voltage', current: 'Current', power: 'Power', energy: 'Energy', endsAt: 'Ends',
      noPorts: 'This station has no port data.',
      refresh: 'Refresh', refreshAria: (name) => `Refresh ${name}`, refreshing: 'Refreshing…',
      cooldown: (s) => `Refresh in ${s} s`,
      refreshFailed: (e) => `Refresh failed: ${e}`, stillUnreachable: 'Refresh failed: the station is still unreachable.', refreshDone: 'Refreshed', tooSoon: 'Too many refreshes, please wait.',
      networkError: 'network error', portChange: (n, a, b) => `Port ${n}: ${a} → ${b}`,
      apiDocs: 'API docs',
      showing: (n, total) => `Showing ${n} of ${total} stations; search to narrow the list.`, showMore: 'Show more',
    },
  };

  // Status symbols (24×24, stroked), so status is never told by colour alone.
  const ICONS = {
    free: 'M4.5 12.5l5 5L19.5 7',
    occupied: 'M13 2.5L4.5 13.5h6.5l-1 8 8.5-11h-6.5z',
    fault: 'M12 3.5L2.5 20h19zM12 10v4.5M12 17.2v.1',
    offline: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM5.7 5.7l12.6 12.6',
    reserved: 'M12 3a9 9 0 1 0 0 18 9 9 0 1 0 0-18zM12 7v5.5l3.5 2',
    unknown: 'M9 9.2a3 3 0 1 1 4.2 2.7c-.8.4-1.2 1-1.2 1.8v.6M12 17.6v.1',
  };

  function readStore(key, fallback) {
    try { const v = localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); } catch (e) { return fallback; }
  }
  function writeStore(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: keep in memory only */ }
  }
  function stationIdFromHash() {
    const m = /^#\/station\/(.+)$/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }
  // RFC 3339 → epoch ms (null if missing); fractions beyond milliseconds are cut for older browsers
  function ms(iso) {
    const t = iso ? Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1')) : NaN;
    return Number.isNaN(t) ? null : t;
  }
  async function getJson(url, init) {
    const r = await fetch(url, Object.assign({ headers: { Accept: 'application/json' }, cache: 'no-store' }, init));
    let body = null;
    try { body = await r.json(); } catch (e) { /* empty or not JSON */ }
    return { status: r.status, ok: r.ok, headers: r.headers, body };
  }

  const app = Vue.createApp({
    template: '#app-template',
    data() {
      return {
        lang: readStore(STORE_LANG, 'zh') === 'en' ? 'en' : 'zh',
        stations: [], total: 0, pageSize: 0, listLoaded: false, listError: false,
        loadedQuery: { q: '', favOnly: false },   // the search and filter of the page on screen
        selectedId: null, current: null, currentError: null,   // currentError: 'notFound' | 'loadFailed'
        search: '', favOnly: false, listLimit: LIST_PAGE, favourites: [].concat(readStore(STORE_FAVS, [])).filter((f) => typeof f === 'string'),
        connection: 'offline', clientNow: Date.now(), skew: 0,
        cooldowns: {}, refreshing: false, refreshNote: null,   // refreshNote: { kind: 'info' | 'error', key (I18N), arg }
        flashing: {}, announcement: '',
        isWide: window.matchMedia(WIDE_QUERY).matches, cameFromList: false,
      };
    },
    computed: {
      t() { return I18N[this.lang]; },
      serverNow() { return this.clientNow + this.skew; },
      // The loaded page (favourites first); with "favourites only", unstarred ones drop at once.
      shownStations() {
        const list = this.favOnly ? this.stations.filter((s) => this.isFav(s.station_id)) : this.stations.slice();
        return list.sort((a, b) => Number(this.isFav(b.station_id)) - Number(this.isFav(a.station_id)));
      },
      hasMore() { return this.pageSize < this.total; },
      canShowMore() { return this.listLimit < LIST_MAX; },
      // Whether the page on screen is a search or the favourites (not what is typed right now).
      filtering() { return !!this.loadedQuery.q || this.loadedQuery.favOnly; },
      sortedPorts() {
        return this.current ? (this.current.ports || []).slice().sort((a, b) => a.port - b.port) : [];
      },
      cooldownLeft() {
        const until = this.selectedId ? this.cooldowns[this.selectedId] : 0;
        return until ? Math.max(0, Math.ceil((until - this.clientNow) / 1000)) : 0;
      },
      showList() { return this.isWide || !this.selectedId; },
      showStation() { return this.isWide || !!this.selectedId; },
    },
    watch: {
      lang: {
        immediate: true,
        handler(lang) { document.documentElement.lang = I18N[lang].htmlLang; writeStore(STORE_LANG, lang); this.updateTitle(); },
      },
      current() { this.updateTitle(); },
      search() {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => { this.listLimit = LIST_PAGE; this.loadList(); }, SEARCH_MS);
      },
      favOnly() { this.listLimit = LIST_PAGE; this.loadList(); },
      isWide(wide) { if (wide && !this.selectedId) this.autoSelect(); },
    },
    methods: {
      showMore() { this.listLimit = Math.min(this.listLimit + LIST_PAGE, LIST_MAX); this.loadList(); },
      // ---- formatting ----
      st(status) { return STATUSES.includes(status) ? status : 'unknown'; },
      statusLabel(status) { return this.t.status[this.st(status)]; },
      icon(status) { return ICONS[this.st(status)]; },
      parts(msDiff) {
        const mins = Math.max(0, Math.floor(msDiff / 60000));
        return [Math.floor(mins / 1440), Math.floor(mins / 60) % 24, mins % 60];
      },
      // "for 1 h 5 min" part of "Charging for 1 h 5 min" ('' when `since` is unknown)
      durationText(port) {
        const since = ms(port.since);
        if (since === null) return '';
        const diff = this.serverNow - since;
        return diff < 60000 ? this.t.justNow : this.t.forDur(this.t.dur(...this.parts(diff)));
      },
      relTime(iso) {
        const t = ms(iso);
        if (t === null) return '';
        return this.t.ago(...this.parts(this.serverNow - t));
      },
      clock(iso, withSeconds) {
        const t = ms(iso);
        if (t === null) return '';
        const date = new Date(t);
        const sameDay = new Date(this.serverNow).toDateString() === date.toDateString();
        const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
        if (withSeconds) opts.second = '2-digit';
        if (!sameDay) { opts.month = 'numeric'; opts.day = 'numeric'; }
        return date.toLocaleString(this.t.htmlLang, opts);
      },
      updatedText(s) { return s.updated_at ? this.t.updated(this.relTime(s.updated_at)) : this.t.never; },
      num(v, digits) {
        return Number(v).toLocaleString(this.t.htmlLang, { minimumFractionDigits: digits, maximumFractionDigits: digits });
      },
      has(v) { return v !== null && v !== undefined; },
      hasReadings(p) { return ['voltage', 'current', 'power', 'energy_kwh', 'session_ends_at'].some((k) => this.has(p[k])); },
      countsFor(s, all) {
        const sum = s.summary || {};
        return STATUSES.filter((k) => (all ? sum[k] > 0 : LIST_COUNTS.includes(k) || sum[k] > 0))
          .map((k) => ({ key: k, n: sum[k] || 0 }));
      },
      noteText(n) {
        const entry = this.t[n.key];
        return typeof entry === 'function' ? entry(n.arg === null ? this.t.networkError : n.arg) : entry;
      },
      updateTitle() {
        document.title = this.current ? `${this.current.name} · ${this.t.appTitle}` : this.t.appTitle;
      },
      noteServerTime(iso) { const t = ms(iso); if (t !== null) this.skew = t - Date.now(); },

      // ---- favourites, language, navigation ----
      isFav(id) { return this.favourites.includes(id); },
      toggleFav(id) {
        this.favourites = this.isFav(id) ? this.favourites.filter((f) => f !== id) : this.favourites.concat(id);
        writeStore(STORE_FAVS, this.favourites);
      },
      toggleLang() { this.lang = this.lang === 'zh' ? 'en' : 'zh'; },
      select(id) {
        this.cameFromList = !this.isWide;
        const hash = '#/station/' + encodeURIComponent(id);
        if (location.hash !== hash) location.hash = hash; // hashchange opens it
        else this.openStation(id);
        if (!this.isWide) { this.focusOnLoad = true; window.scrollTo(0, 0); }
      },
      focusTitle() {
        this.focusOnLoad = false;
        this.$nextTick(() => { const el = document.getElementById('station-title'); if (el) el.focus({ preventScroll: true }); });
      },
      goBack() {
        if (this.cameFromList) { history.back(); return; }
        history.pushState(null, '', location.pathname + location.search);
        this.onHashChange();
      },
      onHashChange() {
        const id = stationIdFromHash();
        if (id) { this.openStation(id); return; }
        const previous = this.selectedId;
        this.selectedId = null; this.current = null; this.currentError = null;
        this.cameFromList = false;
        if (this.isWide) this.autoSelect();
        else if (previous) this.$nextTick(() => {
          const btn = document.querySelector(`[data-station-id="${CSS.escape(previous)}"] .station-select`);
          if (btn) btn.focus();
        });
      },
      autoSelect() {
        if (this.selectedId || !this.stations.length) return;
        const pick = this.stations.find((s) => this.isFav(s.station_id)) || this.stations[0];
        history.replaceState(null, '', '#/station/' + encodeURIComponent(pick.station_id));
        this.openStation(pick.station_id);
      },
      openStation(id) {
        if (id === this.selectedId) return;
        this.selectedId = id; this.current = null; this.currentError = null;
        this.refreshNote = null; this.flashing = {}; this.announcement = '';
        this.loadCurrent();
      },

      // ---- data ----
      // A page of the list, searched by the server, with the favourites that match in front.
      async loadList() {
        const seq = ++this.listSeq;
        const q = this.search.trim();
        const favOnly = this.favOnly;
        // Commas stay commas (not %2C): ids are plain ASCII, and the URL stays short.
        const ask = (params, ids) => {
          const p = new URLSearchParams(params);
          p.set('view', 'summary');   // the list shows counts; a station's ports come with it when opened
          if (q) p.set('q', q);
          const named = ids ? (p.toString() ? '&' : '') + 'ids=' + ids.map(encodeURIComponent).join(',') : '';
          return getJson('/api/stations?' + p.toString() + named);
        };
        const valid = (r) => !!(r && r.ok && r.body && Array.isArray(r.body.stations));
        const favIds = this.favourites.filter((f) => STATION_ID.test(f));
        const chunks = [];
        for (let i = 0; i < favIds.length; i += FAV_CHUNK) chunks.push(favIds.slice(i, i + FAV_CHUNK));
        try {
          const [page, ...favs] = await Promise.all([
            favOnly ? null : ask({ limit: String(this.listLimit) }),
            ...chunks.map((ids) => ask({}, ids).catch(() => null)),
          ]);
          if (seq !== this.listSeq) return true;   // a newer request is on its way
          if (!favOnly && !valid(page)) throw new Error(`HTTP ${page && page.status}`);
          if (favOnly && favs.some((r) => !valid(r))) throw new Error('favourites');
          // Favourites that could not be read are left out; the page itself still shows.
          const favStations = [].concat(...favs.filter(valid).map((r) => r.body.stations));
          const pageStations = favOnly ? favStations : page.body.stations;
          const body = favOnly ? (favs.find(valid) || {}).body || {} : page.body;
          if (body.timestamp) this.noteServerTime(body.timestamp);
          const seen = new Set();
          this.stations = favStations.concat(pageStations).filter((s) => !seen.has(s.station_id) && seen.add(s.station_id));
          this.pageSize = pageStations.length;
          this.total = favOnly || !Number.isFinite(page.body.total) ? pageStations.length : page.body.total;
          this.loadedQuery = { q, favOnly };
          this.listLoaded = true; this.listError = false;
          if (this.isWide && !this.selectedId) this.autoSelect();
          return true;
        } catch (e) {
          // Shown when there is no list yet, or when the list on screen is not what was asked for.
          const stale = this.loadedQuery.q !== q || this.loadedQuery.favOnly !== favOnly;
          if (seq === this.listSeq && (!this.listLoaded || stale)) this.listError = true;
          return false;
        }
      },
      // A station the list does not know: reload once shortly, however many events arrive.
      reloadListSoon() {
        if (this.reloadTimer) return;
        this.reloadTimer = setTimeout(() => { this.reloadTimer = null; this.loadList(); }, RELOAD_MS);
      },
      async loadCurrent() {
        const id = this.selectedId;
        if (!id) return true;
        try {
          const r = await getJson('/api/stations/' + encodeURIComponent(id));
          if (id !== this.selectedId) return true;
          if (r.status === 404) { this.current = null; this.currentError = 'notFound'; return true; }
          if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
          this.currentError = null;
          this.setCurrent(r.body, false);
          if (this.focusOnLoad) this.focusTitle();
          return true;
        } catch (e) {
          if (id === this.selectedId && !this.current) this.currentError = 'loadFailed';
          return false;
        }
      },
      // Replace the open station; a port keeps its newer reading (e.g. from SSE) over an older snapshot.
      setCurrent(station, merge) {
        const old = this.current && this.current.station_id === station.station_id ? this.current : null;
        const oldPorts = new Map(((old && old.ports) || []).map((p) => [p.port, p]));
        let ports = station.ports || [];
        if (merge) {
          const merged = new Map(oldPorts);
          ports.forEach((p) => merged.set(p.port, p));
          ports = Array.from(merged.values());
        } else {
          ports = ports.map((p) => {
            const o = oldPorts.get(p.port);
            return o && ms(o.timestamp) !== null && ms(o.timestamp) > (ms(p.timestamp) || 0) ? o : p;
          });
        }
        if (old) this.noteChanges(oldPorts, ports);
        this.current = Object.assign({}, station, { ports });
        this.patchListEntry(station);
      },
      noteChanges(oldPorts, ports) {
        const messages = [];
        ports.forEach((p) => {
          const o = oldPorts.get(p.port);
          if (!o || o.status === p.status) return;
          messages.push(this.t.portChange(p.port, this.statusLabel(o.status), this.statusLabel(p.status)));
          this.flash(p.port);
        });
        if (messages.length) this.announcement = messages.join('；');
      },
      flash(port) {
        this.flashing = Object.assign({}, this.flashing, { [port]: Date.now() });
        setTimeout(() => {
          if (this.flashing[port] && Date.now() - this.flashing[port] >= FLASH_MS - 50) {
            const next = Object.assign({}, this.flashing); delete next[port]; this.flashing = next;
          }
        }, FLASH_MS);
      },
      patchListEntry(data) {
        const entry = this.stations.find((s) => s.station_id === data.station_id);
        if (!entry) return false;
        ['name', 'address', 'enabled', 'port_count', 'summary', 'updated_at', 'checked_at', 'stale', 'last_error']
          .forEach((k) => { if (k in data) entry[k] = data[k]; });
        return true;
      },
      applyEvent(ev) {
        if (!ev || !ev.station_id) return;
        // A station not on the page is new only when the page holds the whole fleet.
        if (!this.patchListEntry(ev) && !this.filtering && !this.hasMore) this.reloadListSoon();
        if (!this.current || this.current.station_id !== ev.station_id) return;
        const byPort = new Map((ev.ports || []).map((p) => [p.port, p]));
        (ev.changes || []).forEach((c) => {   // a change without its port object: update the status only
          const o = (this.current.ports || []).find((p) => p.port === c.port);
          if (!byPort.has(c.port) && o) byPort.set(c.port, Object.assign({}, o, { status: c.new, since: c.at }));
        });
        const fields = {};
        ['summary', 'updated_at', 'checked_at', 'stale', 'last_error'].forEach((k) => { if (k in ev) fields[k] = ev[k]; });
        this.setCurrent(Object.assign({}, this.current, fields, { ports: Array.from(byPort.values()) }), true);
      },
      async refresh() {
        const id = this.selectedId;
        if (!id || this.refreshing || this.cooldownLeft > 0) return;
        this.refreshing = true; this.refreshNote = null;
        const startCooldown = (secs) => {
          const s = Number.isFinite(secs) && secs > 0 ? secs : DEFAULT_COOLDOWN_S;
          this.cooldowns = Object.assign({}, this.cooldowns, { [id]: Date.now() + s * 1000 });
          this.clientNow = Date.now();
        };
        try {
          const r = await getJson(`/api/stations/${encodeURIComponent(id)}/refresh`, { method: 'POST' });
          const body = r.body || {};
          const retryAfter = Number(body.retry_after_secs != null ? body.retry_after_secs : r.headers.get('Retry-After'));
          if (r.status === 429) {
            startCooldown(retryAfter);
            this.refreshNote = { kind: 'info', key: 'tooSoon' };
          } else if (r.ok) {
            startCooldown(retryAfter);
            if (body.station && id === this.selectedId) this.setCurrent(body.station, false);
            if (body.result === 'failed') {
              const same = body.station && body.error && body.station.last_error === body.error;
              this.refreshNote = same ? { kind: 'error', key: 'stillUnreachable' } : { kind: 'error', key: 'refreshFailed', arg: body.error || '?' };
            }
            else this.announcement = this.t.refreshDone;
          } else {
            this.refreshNote = { kind: 'error', key: 'refreshFailed', arg: body.error || `HTTP ${r.status}` };
          }
        } catch (e) {
          this.refreshNote = { kind: 'error', key: 'refreshFailed', arg: null };   // null: network error
        } finally {
          this.refreshing = false;
        }
      },

      // ---- live updates: SSE with polling fallback ----
      connectSse() {
        clearTimeout(this.sseRetryTimer);
        if (!('EventSource' in window)) { this.startPolling(); return; }
        if (this.es) this.es.close();
        const es = new EventSource('/api/events');
        this.es = es;
        let errors = 0;
        es.addEventListener('open', () => {
          errors = 0;
          this.stopPolling();
          if (this.hadSse) { this.loadList(); this.loadCurrent(); }   // catch up on missed events
          this.hadSse = true;
          this.connection = 'live';
        });
        es.addEventListener('hello', (e) => { try { this.noteServerTime(JSON.parse(e.data).server_time); } catch (x) { /* ignore */ } });
        es.addEventListener('station', (e) => { try { this.applyEvent(JSON.parse(e.data)); } catch (x) { /* ignore bad event */ } });
        es.addEventListener('lagged', () => { this.loadList(); this.loadCurrent(); });   // events were dropped: re-sync
        es.addEventListener('error', () => {
          if (this.es !== es) return;
          errors += 1;
          if (es.readyState === EventSource.CLOSED || errors >= SSE_MAX_ERRORS) {
            es.close(); this.es = null;
            this.startPolling();
            this.sseRetryTimer = setTimeout(() => this.connectSse(), SSE_RETRY_MS);
          } else if (!this.polling) {
            this.connection = 'offline';
          }
        });
      },
      startPolling() {
        if (this.polling) return;
        const poll = async () => {
          if (document.hidden) return;
          const [a, b] = await Promise.all([this.loadList(), this.loadCurrent()]);
          if (this.polling) this.connection = a && b ? 'polling' : 'offline';
        };
        this.polling = setInterval(poll, POLL_MS);
        poll();
      },
      stopPolling() { clearInterval(this.polling); this.polling = null; },
    },
    created() {
      // plain (non-reactive) instance fields
      this.es = null; this.hadSse = false; this.polling = null; this.sseRetryTimer = null; this.focusOnLoad = false;
      this.listSeq = 0; this.searchTimer = null; this.reloadTimer = null;
    },
    async mounted() {
      const mq = window.matchMedia(WIDE_QUERY);
      mq.addEventListener('change', (e) => { this.isWide = e.matches; });
      window.addEventListener('hashchange', () => this.onHashChange());
      document.addEventListener('visibilitychange', () => {
        if (!document.hidden) { this.loadList(); this.loadCurrent(); }
      });
      setInterval(() => { this.clientNow = Date.now(); }, 1000);
      setInterval(() => { if (!document.hidden) this.loadCurrent(); }, STATION_MS);
      setInterval(() => { if (!document.hidden) this.loadList(); }, LIST_MS);

      const fromHash = stationIdFromHash();
      if (fromHash) this.openStation(fromHash);
      await this.loadList();
      this.connectSse();
    },
  });

  app.mount('#app');
})();
