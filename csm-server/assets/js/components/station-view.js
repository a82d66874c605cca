/*
 * csm dashboard — station-view.js: the open station: its name, address and freshness, the
 * refresh button (with its cool-down), "notify me" (a browser notification when a port here
 * frees while the page is open; no server rule needed), for an OCPP charger its connection, last message
 * and firmware (GET /api/ocpp/charge-points/{id}, asked again at each refresh of the station), the counts
 * by status, banners when its data is stale or its vendor unreachable, a tile per port, and the station's
 * history (station-history.js); under an OCPP station, the operator's menu and its message log
 * (ocpp-panel.js).
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.StationView = {
    components: { 'port-tile': csm.PortTile, 'station-history': csm.StationHistory, 'ocpp-panel': csm.OcppPanel },
    props: {
      t: { type: Object, required: true },
      now: { type: Number, required: true },
      isWide: { type: Boolean, required: true },
      selectedId: { type: String, default: null },
      station: { type: Object, default: null },   // GET /api/stations/{id}, kept live
      error: { type: String, default: null },     // 'notFound' | 'loadFailed'
      refreshing: { type: Boolean, required: true },
      cooldownLeft: { type: Number, required: true },
      note: { type: Object, default: null },      // { kind: 'info' | 'error', key (I18N), arg }
      flashing: { type: Object, required: true },  // port → when it last changed
      announcement: { type: String, required: true },
      watching: { type: Boolean, required: true },   // "notify me" is on for this station
      notifyState: { type: String, required: true }, // 'unsupported' | 'default' | 'granted' | 'denied'
    },
    emits: ['back', 'refresh', 'toggle-notify'],
    data() {
      return { ocpp: null };  // the charge point's registry entry, for a station of vendor ocpp
    },
    watch: {
      ocppKey: { handler: 'loadOcpp', immediate: true },
    },
    computed: {
      ocppKey() {
        const s = this.station;
        return s && s.vendor === 'ocpp' ? `${s.station_id}|${s.checked_at || ''}` : null;
      },
      ports() {
        return this.station ? (this.station.ports || []).slice().sort((a, b) => a.port - b.port) : [];
      },
      counts() { return csm.counts(this.station, true); },
      noteText() {
        const entry = this.t[this.note.key];
        return typeof entry === 'function' ? entry(this.note.arg === null ? this.t.networkError : this.note.arg) : entry;
      },
    },
    methods: {
      async loadOcpp() {
        if (!this.ocppKey) { this.ocpp = null; return; }
        const id = this.station.station_id;
        try {
          const response = await fetch(`/api/ocpp/charge-points/${encodeURIComponent(id)}`);
          const entry = response.ok ? await response.json() : null;
          if (this.station && this.station.station_id === id) this.ocpp = entry;
        } catch (_) {
          this.ocpp = null;
        }
      },
      ocppSince(o) {
        const at = o.connection === 'connected' || o.connection === 'silent' ? o.connected_at : o.disconnected_at;
        return at ? this.t.ocppSince(this.clock(at)) : '';
      },
      clock(iso) { return csm.clock(this.t, iso, this.now, true); },
      rel(iso) { return csm.relTime(this.t, iso, this.now); },
    },
    template: `
      <main class="station-view">
        <button v-if="!isWide" type="button" class="btn btn-ghost back" data-testid="back-button" @click="$emit('back')">
          <span aria-hidden="true">←</span> {{ t.back }}
        </button>

        <p v-if="!selectedId" class="note empty">{{ t.pickStation }}</p>
        <p v-else-if="error" class="note note-error">{{ error === 'notFound' ? t.notFound(selectedId) : t.loadFailed }}</p>
        <p v-else-if="!station" class="note">{{ t.loading }}</p>

        <template v-else>
          <header class="station-header">
            <div class="station-heading">
              <h2 id="station-title" data-testid="station-title" tabindex="-1">{{ station.name }}</h2>
              <p class="station-address" v-if="station.address">{{ station.address }}</p>
              <p class="station-sub">
                <span class="mono">{{ station.station_id }}</span>
                <span v-if="station.vendor"> · {{ station.vendor }}</span>
                <span> · </span>
                <time v-if="station.updated_at" :datetime="station.updated_at">{{ t.updatedAt(clock(station.updated_at), rel(station.updated_at)) }}</time>
                <span v-else>{{ t.never }}</span>
              </p>
              <p v-if="ocpp" class="station-sub ocpp-line" data-testid="ocpp-line" :data-connection="ocpp.connection">
                <span class="ocpp-badge" :class="'ocpp-' + ocpp.connection" data-testid="ocpp-version">OCPP{{ ocpp.ocpp_version ? ' ' + ocpp.ocpp_version : '' }} · {{ t.ocppConnection[ocpp.connection] }}</span>
                <span v-if="ocppSince(ocpp)"> · {{ ocppSince(ocpp) }}</span>
                <span v-if="ocpp.last_message_at"> · {{ t.ocppLast(ocpp.last_action || '', rel(ocpp.last_message_at)) }}</span>
                <span v-if="ocpp.vendor || ocpp.model"> · {{ [ocpp.vendor, ocpp.model].filter(Boolean).join(' ') }}</span>
                <span v-if="ocpp.firmware"> · {{ t.firmware }} {{ ocpp.firmware }}<template v-if="ocpp.firmware_status"> ({{ ocpp.firmware_status }})</template></span>
                <span v-if="ocpp.problem" class="ocpp-problem"> · {{ t.ocppProblem }} {{ ocpp.problem }}</span>
              </p>
            </div>
            <div class="refresh-box">
              <button type="button" class="btn notify" :class="watching ? 'btn-primary' : 'btn-ghost'" data-testid="notify-button"
                      :aria-pressed="watching" :disabled="notifyState === 'unsupported' || notifyState === 'denied'"
                      :title="notifyState === 'denied' ? t.notifyDenied : notifyState === 'unsupported' ? t.notifyUnsupported : t.notifyHint"
                      @click="$emit('toggle-notify')">
                <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10 21h4"/></svg>
                <span>{{ watching ? t.notifyOn : t.notifyMe }}</span>
              </button>
              <button type="button" class="btn btn-primary refresh" data-testid="refresh-button"
                      :disabled="refreshing || cooldownLeft > 0"
                      :aria-label="refreshing ? t.refreshing : cooldownLeft > 0 ? t.cooldown(cooldownLeft) : t.refreshAria(station.name)"
                      @click="$emit('refresh')">
                <span v-if="refreshing" class="spinner" aria-hidden="true"></span>
                <span v-if="refreshing">{{ t.refreshing }}</span>
                <span v-else-if="cooldownLeft > 0" class="cooldown" data-testid="cooldown">{{ t.cooldown(cooldownLeft) }}</span>
                <template v-else>
                  <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7"/></svg>
                  <span>{{ t.refresh }}</span>
                </template>
              </button>
            </div>
          </header>

          <div class="counts counts-large">
            <span v-for="c in counts" :key="c.key" class="count" :class="'st-' + c.key">
              <span class="count-dot" aria-hidden="true"></span>{{ t.status[c.key] }} <b>{{ c.n }}</b>
            </span>
            <span class="count count-total" v-if="station.summary">{{ t.total(station.summary.total) }}</span>
          </div>

          <p v-if="note && (note.kind === 'error' || cooldownLeft > 0)" class="banner" :class="note.kind === 'error' ? 'banner-error' : 'banner-info'" role="alert">{{ noteText }}</p>
          <div v-if="station.last_error" class="banner banner-error" data-testid="stale-banner">
            <strong>{{ t.unreachableBanner }}</strong>{{ station.last_error }}
            <span v-if="station.checked_at" class="banner-sub">{{ t.lastChecked(clock(station.checked_at)) }}</span>
          </div>
          <div v-else-if="station.stale" class="banner banner-stale" data-testid="stale-banner">
            <strong>{{ t.stale }}</strong> · {{ t.staleBanner }}
          </div>

          <p v-if="!ports.length" class="note">{{ t.noPorts }}</p>
          <ul class="port-grid" :aria-label="station.name">
            <port-tile v-for="p in ports" :key="p.port" :port="p" :t="t" :now="now" :flashing="!!flashing[p.port]"></port-tile>
          </ul>
          <ocpp-panel v-if="station.vendor === 'ocpp'" :t="t" :station-id="station.station_id" :ports="ports" :version="ocpp && ocpp.ocpp_version"></ocpp-panel>
          <station-history :t="t" :station-id="station.station_id"></station-history>
        </template>
        <div class="sr-only" aria-live="polite" aria-atomic="true" data-testid="live-region">{{ announcement }}</div>
      </main>`,
  };
})();
