/*
 * csm dashboard — app.js: the page. It holds what is on screen (the list's page, the open
 * station, the language, favourites), loads it from the API, follows the URL (#/station/ID,
 * #/fleet) and applies live updates (live.js); the components draw it:
 *   station-list.js   the side bar        station-view.js   the open station
 *   port-tile.js      one port            station-history.js  its history and statistics
 *   fleet-view.js     the operators' page i18n.js           every text, zh and en
 *
 * API (same origin):
 *   GET  /api/stations?view=summary&limit=&q=&ids=   a page of the list, without ports
 *   GET  /api/stations/{id}                           one station with its ports
 *   POST /api/stations/{id}/refresh                   manual refresh (429 + Retry-After while cooling down)
 *   GET  /api/events                                  Server-Sent Events: hello, station, lagged
 */
(function () {
  'use strict';
  const csm = window.csm;

  const WIDE_QUERY = '(min-width: 768px)';
  const STORE_LANG = 'csm.lang';
  const STORE_FAVS = 'csm.favourites';
  const DEFAULT_COOLDOWN_S = 10;
  const LIST_PAGE = 200;     // stations asked for at once; more on request (large fleets)
  const LIST_MAX = 10000;    // the largest page the API serves
  const SEARCH_MS = 250;     // typing pause before the list is asked for again
  const FAV_CHUNK = 100;     // favourites named in one request (keeps the URL short)
  const RELOAD_MS = 1000;    // a station the list does not know: reload at most this often
  const FLASH_MS = 2200;

  function stationIdFromHash() {
    const m = /^#\/station\/(.+)$/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }

  const app = Vue.createApp({
    template: '#app-template',
    components: { 'station-list': csm.StationList, 'station-view': csm.StationView, 'fleet-view': csm.FleetView },
    data() {
      return {
        lang: csm.readStore(STORE_LANG, 'zh') === 'en' ? 'en' : 'zh',
        // The list's page on screen, and the search and filter it was loaded for.
        stations: [], total: 0, pageSize: 0, listLoaded: false, listError: false,
        loadedQuery: { q: '', favOnly: false },
        search: '', favOnly: false, listLimit: LIST_PAGE,
        favourites: [].concat(csm.readStore(STORE_FAVS, [])).filter((f) => typeof f === 'string'),
        // The operators' page is open (#/fleet).
        fleet: location.hash === '#/fleet',
        // The open station.
        selectedId: null, current: null, currentError: null,
        cooldowns: {}, refreshing: false, refreshNote: null, flashing: {}, announcement: '',
        connection: 'offline', clientNow: Date.now(), skew: 0,
        isWide: window.matchMedia(WIDE_QUERY).matches, cameFromList: false,
        // "Notify me": stations whose freed ports this tab announces, and the permission.
        watched: {}, notifyState: 'Notification' in window ? Notification.permission : 'unsupported',
      };
    },
    computed: {
      t() { return csm.I18N[this.lang]; },
      serverNow() { return this.clientNow + this.skew; },
      // The loaded page, favourites first; with "favourites only", unstarred ones drop at once.
      shownStations() {
        const list = this.favOnly ? this.stations.filter((s) => this.isFav(s.station_id)) : this.stations.slice();
        return list.sort((a, b) => Number(this.isFav(b.station_id)) - Number(this.isFav(a.station_id)));
      },
      hasMore() { return this.pageSize < this.total; },
      canShowMore() { return this.listLimit < LIST_MAX; },
      filtering() { return !!this.loadedQuery.q || this.loadedQuery.favOnly; },
      cooldownLeft() {
        const until = this.selectedId ? this.cooldowns[this.selectedId] : 0;
        return until ? Math.max(0, Math.ceil((until - this.clientNow) / 1000)) : 0;
      },
      showList() { return this.isWide || (!this.selectedId && !this.fleet); },
      showStation() { return !this.fleet && (this.isWide || !!this.selectedId); },
      showFleet() { return this.fleet; },
    },
    watch: {
      lang: {
        immediate: true,
        handler(lang) { document.documentElement.lang = csm.I18N[lang].htmlLang; csm.writeStore(STORE_LANG, lang); this.updateTitle(); },
      },
      current() { this.updateTitle(); },
      search() {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => { this.listLimit = LIST_PAGE; this.loadList(); }, SEARCH_MS);
      },
      favOnly() { this.listLimit = LIST_PAGE; this.loadList(); },
      isWide(wide) { if (wide && !this.selectedId && !this.fleet) this.autoSelect(); },
    },
    methods: {
      updateTitle() {
        document.title = this.current ? `${this.current.name} · ${this.t.appTitle}` : this.t.appTitle;
      },
      noteServerTime(iso) { const t = csm.ms(iso); if (t !== null) this.skew = t - Date.now(); },
      isFav(id) { return this.favourites.includes(id); },
      toggleFav(id) {
        this.favourites = this.isFav(id) ? this.favourites.filter((f) => f !== id) : this.favourites.concat(id);
        csm.writeStore(STORE_FAVS, this.favourites);
      },
      toggleLang() { this.lang = this.lang === 'zh' ? 'en' : 'zh'; },
      showMore() { this.listLimit = Math.min(this.listLimit + LIST_PAGE, LIST_MAX); this.loadList(); },

      // ---- navigation ----
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
        this.fleet = location.hash === '#/fleet';
        const id = stationIdFromHash();
        if (id) { this.openStation(id); return; }
        if (this.fleet) {
          this.selectedId = null; this.current = null; this.currentError = null;
          if (!this.isWide) window.scrollTo(0, 0);
          return;
        }
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
        if (this.selectedId || this.fleet || !this.stations.length) return;
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

      // ---- loading ----
      // Everything on screen again: what the live updates call when the page must catch up.
      async resync() {
        const [list, current] = await Promise.all([this.loadList(), this.loadCurrent()]);
        return list && current;
      },
      // A page of the list, searched by the server, with the favourites that match in front.
      async loadList() {
        const seq = ++this.listSeq;
        const q = this.search.trim();
        const favOnly = this.favOnly;
        // Commas stay commas (not %2C): ids are plain ASCII, and the URL stays short.
        const ask = (params, ids) => {
          const p = new URLSearchParams(params);
          p.set('view', 'summary');   // the list shows counts; a station's ports come when it is opened
          if (q) p.set('q', q);
          const named = ids ? '&ids=' + ids.map(encodeURIComponent).join(',') : '';
          return csm.getJson('/api/stations?' + p.toString() + named);
        };
        const valid = (r) => !!(r && r.ok && r.body && Array.isArray(r.body.stations));
        const favIds = this.favourites.filter((f) => csm.STATION_ID.test(f));
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
          if (this.isWide && !this.selectedId && !this.fleet) this.autoSelect();
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
          const r = await csm.getJson('/api/stations/' + encodeURIComponent(id));
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

      // ---- what changed ----
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
            return o && csm.ms(o.timestamp) !== null && csm.ms(o.timestamp) > (csm.ms(p.timestamp) || 0) ? o : p;
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
          const label = (s) => this.t.status[csm.status(s)];
          messages.push(this.t.portChange(p.port, label(o.status), label(p.status)));
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
      // "Notify me" on the open station: asks the browser's permission the first time.
      async toggleNotify() {
        const id = this.selectedId;
        if (!id || !('Notification' in window)) return;
        if (Notification.permission === 'default') {
          try { await Notification.requestPermission(); } catch (e) { /* refused */ }
        }
        this.notifyState = Notification.permission;
        if (Notification.permission !== 'granted') return;
        const next = Object.assign({}, this.watched);
        if (next[id]) delete next[id]; else next[id] = true;
        this.watched = next;
      },
      // A port of a watched station freed: a browser notification.
      notifyFreed(ev) {
        if (!this.watched[ev.station_id] || this.notifyState !== 'granted') return;
        (ev.changes || []).filter((c) => c.new === 'free' && c.old !== 'free').forEach((c) => {
          const name = ev.name || ev.station_id;
          try {
            new Notification(this.t.notifyTitle(name), { body: this.t.notifyBody(c.port), tag: `${ev.station_id}:${c.port}` });
          } catch (e) { /* the browser refused */ }
        });
      },
      // A `station` event of the live stream.
      applyUpdate(ev) {
        if (!ev || !ev.station_id) return;
        this.notifyFreed(ev);
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

      // ---- manual refresh ----
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
          const r = await csm.getJson(`/api/stations/${encodeURIComponent(id)}/refresh`, { method: 'POST' });
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
            } else this.announcement = this.t.refreshDone;
          } else {
            this.refreshNote = { kind: 'error', key: 'refreshFailed', arg: body.error || `HTTP ${r.status}` };
          }
        } catch (e) {
          this.refreshNote = { kind: 'error', key: 'refreshFailed', arg: null };   // null: network error
        } finally {
          this.refreshing = false;
        }
      },
    },
    created() {
      // plain (non-reactive) instance fields
      this.focusOnLoad = false; this.listSeq = 0; this.searchTimer = null; this.reloadTimer = null;
    },
    async mounted() {
      window.matchMedia(WIDE_QUERY).addEventListener('change', (e) => { this.isWide = e.matches; });
      window.addEventListener('hashchange', () => this.onHashChange());
      setInterval(() => { this.clientNow = Date.now(); }, 1000);   // durations and cool-downs tick
      const fromHash = stationIdFromHash();
      if (fromHash) this.openStation(fromHash);
      await this.loadList();
      csm.live({
        onStation: (update) => this.applyUpdate(update),
        onServerTime: (time) => this.noteServerTime(time),
        resync: () => this.resync(),
        onState: (state) => { this.connection = state; },
      }).start();
    },
  });

  app.mount('#app');
})();
