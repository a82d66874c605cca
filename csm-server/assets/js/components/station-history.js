/*
 * csm dashboard — station-history.js: the open station's history under its ports: each port's
 * last 24 hours as a status timeline with a voltage / current / power chart (none where the
 * vendor sends no measurements), the occupancy of the last 7 days, the weekday × hour heat map
 * and the week's figures; the availability of the last 30 days as a strip of days, with the
 * outages.
 *
 * API: GET /api/stations/{id}/history?from=&points=   GET /api/stations/{id}/stats?days=7
 *      GET /api/stations/{id}/availability?days=30
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  const DAY_MS = 86400000;
  const POINTS = 720;            // readings per port for 24 h: one every 2 minutes at most
  const RELOAD_MS = 60000;       // history is reloaded this often while the station is open

  csm.StationHistory = {
    components: { 'heat-map': csm.HeatMap },
    props: {
      t: { type: Object, required: true },
      stationId: { type: String, required: true },
    },
    data() {
      return { history: null, stats: null, availability: null, failed: false, loadedAt: 0 };
    },
    computed: {
      ports() {
        if (!this.history) return [];
        const start = csm.ms(this.history.from);
        const end = csm.ms(this.history.to);
        return this.history.ports.map((p) => ({
          port: p.port,
          spans: csm.timeline(p.readings, start, end).map((s) => Object.assign(s, {
            left: ((s.from - start) / (end - start)) * 100,
            width: Math.max(0.2, ((s.to - s.from) / (end - start)) * 100),
          })),
          measured: ['voltage', 'current', 'power'].filter((k) => p.readings.some((r) => csm.has(r[k]))),
          readings: p.readings,
        }));
      },
      figures() {
        const s = this.stats;
        if (!s) return [];
        const pct = (v) => (v === null ? '–' : Math.round(v * 100) + '%');
        const min = (v) => (v === null ? '–' : this.t.span(Math.round(v)));
        return [
          [this.t.utilisation, pct(s.utilisation)],
          [this.t.sessions, String(s.sessions)],
          [this.t.medianSession, min(s.median_session_minutes)],
          [this.t.p90Session, min(s.p90_session_minutes)],
          [this.t.faultTime, this.t.span(Math.round(s.minutes.fault))],
          [this.t.offlineTime, this.t.span(Math.round(s.minutes.offline))],
          [this.t.availability, s.availability === null ? '–' : csm.percent(this.t, s.availability)],
        ];
      },
      // The last 30 days, oldest first, each with its share (null: nothing counted).
      strip() {
        const a = this.availability;
        if (!a) return [];
        return a.daily.map((d) => ({
          date: d.date,
          share: d.availability,
          level: d.availability === null ? 'none' : d.availability >= 0.99 ? 'good' : d.availability >= 0.95 ? 'fair' : 'poor',
          title: this.t.availabilityDay(d.date, d.availability === null ? '–' : csm.percent(this.t, d.availability),
            this.t.span(Math.round(d.fault_minutes + d.offline_minutes)), this.t.span(Math.round(d.unavailable_minutes))),
        }));
      },
      outages() {
        const a = this.availability;
        return a ? a.outages.slice(-5).reverse() : [];
      },
    },
    watch: {
      stationId() { this.history = null; this.stats = null; this.availability = null; this.failed = false; this.load(); },
      t() { this.$nextTick(() => this.draw()); },
    },
    methods: {
      async load() {
        const id = this.stationId;
        const from = new Date(Date.now() - DAY_MS).toISOString();
        const base = '/api/stations/' + encodeURIComponent(id);
        try {
          const [history, stats, availability] = await Promise.all([
            csm.getJson(`${base}/history?from=${encodeURIComponent(from)}&points=${POINTS}`),
            csm.getJson(`${base}/stats?days=7`),
            csm.getJson(`${base}/availability?days=30`),
          ]);
          if (id !== this.stationId) return;
          if (!history.ok || !stats.ok) throw new Error('history');
          this.history = history.body; this.stats = stats.body; this.failed = false;
          this.availability = availability.ok ? availability.body : null;
          this.loadedAt = Date.now();
          this.$nextTick(() => this.draw());
        } catch (e) {
          if (id === this.stationId) this.failed = true;
        }
      },
      clear() { (this.charts || []).forEach((c) => c.destroy()); this.charts = []; },
      // Every chart again (after a load or a change of language).
      draw() {
        this.clear();
        if (!this.history) return;
        const color = (status) => csm.cssColor(`--${status}-fg`);
        const t = this.t;
        // Every port's chart spans the whole window, as its timeline does.
        const span = [csm.ms(this.history.from) / 1000, csm.ms(this.history.to) / 1000];
        this.ports.forEach((p) => {
          const el = this.$refs['chart-' + p.port];
          const box = Array.isArray(el) ? el[0] : el;
          if (!box || !p.measured.length) return;
          const x = p.readings.map((r) => csm.ms(r.at) / 1000);
          const series = [{}];
          const data = [x];
          const scales = { x: { time: true, range: () => span } };
          const axes = [csm.timeAxis(t, false)];
          const add = (key, label, unit, stroke, scale, side) => {
            if (!p.measured.includes(key)) return;
            series.push({ label: `${label} (${unit})`, stroke, width: 1.5, scale, spanGaps: false,
              value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(key === 'current' ? 2 : 1)) });
            data.push(p.readings.map((r) => (csm.has(r[key]) ? r[key] : null)));
            if (!scales[scale]) { scales[scale] = {}; axes.push({ scale, side, label: unit, size: 44 }); }
          };
          add('voltage', t.voltage, 'V', color('free'), 'V', 3);
          add('current', t.current, 'A', color('occupied'), 'A', 1);
          add('power', t.power, 'W', color('reserved'), 'W', 1);
          this.charts.push(csm.chart(box, { height: 140, series, scales, axes, legend: { live: true } }, data));
        });
        const days = this.$refs.days;
        if (days && this.stats && this.stats.daily.length) this.charts.push(csm.dailyChart(days, this.stats.daily, t));
      },
      statusLabel(s) { return this.t.status[s]; },
      pct(v) { return v === null || v === undefined ? '–' : csm.percent(this.t, v); },
      outageText(o) {
        const when = (iso) => new Date(iso).toLocaleString(this.t.htmlLang, { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
        const why = o.statuses.map((s) => this.t.status[s]).join(' / ');
        return this.t.outage(when(o.from), o.to ? when(o.to) : null, o.ports.join(', '), why, o.reason);
      },
      spanTitle(s) {
        const clock = (ms) => new Date(ms).toLocaleTimeString(this.t.htmlLang, { hour: '2-digit', minute: '2-digit', hour12: false });
        return `${this.t.status[s.status]} ${clock(s.from)}–${clock(s.to)}`;
      },
    },
    mounted() {
      this.charts = [];
      this.load();
      this.timer = setInterval(() => { if (Date.now() - this.loadedAt >= RELOAD_MS) this.load(); }, RELOAD_MS / 4);
    },
    beforeUnmount() { clearInterval(this.timer); this.clear(); },
    template: `
      <section class="history" data-testid="station-history" :aria-label="t.historyTitle">
        <p v-if="failed" class="note note-error">{{ t.historyFailed }}</p>
        <p v-else-if="!history" class="note">{{ t.loading }}</p>
        <template v-else>
          <h3 class="section-title">{{ t.last24h }}</h3>
          <p v-if="!ports.length" class="note">{{ t.noHistory }}</p>
          <ul class="port-history">
            <li v-for="p in ports" :key="p.port" class="port-history-row" data-testid="port-history" :data-port="p.port">
              <div class="port-history-head"><span class="port-label">{{ t.port }}</span> {{ p.port }}</div>
              <div class="timeline" data-testid="timeline" role="img" :aria-label="t.timelineAria(p.port)">
                <span v-for="(s, i) in p.spans" :key="i" class="timeline-span" :class="'st-' + s.status"
                      :style="{ left: s.left + '%', width: s.width + '%' }" :title="spanTitle(s)"></span>
              </div>
              <div v-if="p.measured.length" class="chart" data-testid="reading-chart" :ref="'chart-' + p.port"></div>
              <p v-else class="chart-none">{{ t.noMeasurements }}</p>
            </li>
          </ul>
          <template v-if="stats">
            <h3 class="section-title">{{ t.week }}</h3>
            <dl class="figures" data-testid="station-figures">
              <div v-for="f in figures" :key="f[0]"><dt>{{ f[0] }}</dt><dd>{{ f[1] }}</dd></div>
            </dl>
            <div class="chart" data-testid="occupancy-chart" ref="days"></div>
            <h3 class="section-title">{{ t.heatTitle }}</h3>
            <heat-map :t="t" :occupancy="stats.occupancy" :timezone="stats.timezone"></heat-map>
          </template>
          <template v-if="availability">
            <h3 class="section-title">{{ t.availabilityTitle(pct(availability.availability)) }}</h3>
            <ol class="availability-strip" data-testid="availability-strip" :aria-label="t.availabilityTitle('')">
              <li v-for="d in strip" :key="d.date" class="availability-day" :class="'av-' + d.level" :title="d.title" :aria-label="d.title"></li>
            </ol>
            <ul v-if="outages.length" class="outages" data-testid="outages">
              <li v-for="(o, i) in outages" :key="i">{{ outageText(o) }}</li>
            </ul>
          </template>
        </template>
      </section>`,
  };
})();
