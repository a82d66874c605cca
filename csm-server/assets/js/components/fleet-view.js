/*
 * csm dashboard — fleet-view.js: the operators' page (#/fleet): the fleet's utilisation and
 * figures over 1, 7 or 30 days, its daily occupancy, the weekday × hour heat map, and the
 * stations longest in fault or unreachable, each a link to its station; then the alert rules
 * and the latest alerts (alerts-panel.js, with the admin token).
 *
 * and the stations below 95% availability over the last 7 days (the weekly review).
 *
 * API: GET /api/stats?days=N   GET /api/availability?days=7&below=0.95
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  const DAY_CHOICES = [1, 7, 30];

  csm.FleetView = {
    components: { 'heat-map': csm.HeatMap, 'alerts-panel': csm.AlertsPanel },
    props: {
      t: { type: Object, required: true },
      isWide: { type: Boolean, required: true },
    },
    emits: ['back'],
    data() { return { days: 7, stats: null, below: null, failed: false, choices: DAY_CHOICES }; },
    computed: {
      figures() {
        const s = this.stats;
        if (!s) return [];
        const pct = (v) => (v === null ? '–' : Math.round(v * 100) + '%');
        const min = (v) => (v === null ? '–' : this.t.span(Math.round(v)));
        return [
          [this.t.stationsCount, String(s.stations)],
          [this.t.utilisation, pct(s.utilisation)],
          [this.t.sessions, String(s.sessions)],
          [this.t.medianSession, min(s.median_session_minutes)],
          [this.t.faultTime, this.t.span(Math.round(s.minutes.fault))],
          [this.t.offlineTime, this.t.span(Math.round(s.minutes.offline))],
          [this.t.availability, s.availability === null ? '–' : csm.percent(this.t, s.availability)],
          [this.t.energy, `${csm.num(this.t, s.energy_kwh, 1)} kWh`],
        ];
      },
    },
    watch: {
      days() { this.load(); },
      t() { this.$nextTick(() => this.draw()); },
    },
    methods: {
      href(id) { return '#/station/' + encodeURIComponent(id); },
      pct(v) { return v === null || v === undefined ? '–' : csm.percent(this.t, v); },
      async load() {
        const days = this.days;
        try {
          const r = await csm.getJson(`/api/stats?days=${days}`);
          if (days !== this.days) return;
          if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
          this.stats = r.body; this.failed = false;
          this.$nextTick(() => this.draw());
          const report = await csm.getJson('/api/availability?days=7&below=0.95');
          this.below = report.ok ? report.body : null;
        } catch (e) {
          this.failed = true;
        }
      },
      draw() {
        if (this.chart) { this.chart.destroy(); this.chart = null; }
        const el = this.$refs.days;
        if (!el || !this.stats || !this.stats.daily.length) return;
        this.chart = csm.dailyChart(el, this.stats.daily, this.t);
      },
    },
    mounted() { this.load(); },
    beforeUnmount() { if (this.chart) this.chart.destroy(); },
    template: `
      <main class="station-view fleet" data-testid="fleet-view">
        <button v-if="!isWide" type="button" class="btn btn-ghost back" @click="$emit('back')">
          <span aria-hidden="true">←</span> {{ t.back }}
        </button>
        <header class="station-header">
          <div class="station-heading">
            <h2 id="fleet-title" tabindex="-1">{{ t.fleetTitle }}</h2>
            <p class="station-sub" v-if="stats">{{ t.fleetSub(stats.stations, stats.timezone) }}</p>
          </div>
          <div class="days-choice" role="group" :aria-label="t.daysLabel">
            <button v-for="d in choices" :key="d" type="button" class="btn" :class="d === days ? 'btn-primary' : 'btn-ghost'"
                    :aria-pressed="d === days" :data-testid="'days-' + d" @click="days = d">{{ t.days(d) }}</button>
          </div>
        </header>
        <p v-if="failed" class="note note-error">{{ t.historyFailed }}</p>
        <p v-else-if="!stats" class="note">{{ t.loading }}</p>
        <template v-else>
          <dl class="figures" data-testid="fleet-figures">
            <div v-for="f in figures" :key="f[0]"><dt>{{ f[0] }}</dt><dd>{{ f[1] }}</dd></div>
          </dl>
          <h3 class="section-title">{{ t.dailyOccupancy }}</h3>
          <div class="chart" data-testid="fleet-chart" ref="days"></div>
          <h3 class="section-title">{{ t.heatTitle }}</h3>
          <heat-map :t="t" :occupancy="stats.occupancy" :timezone="stats.timezone"></heat-map>
          <div class="rankings">
            <section v-for="list in [['mostFault', stats.most_fault], ['mostOffline', stats.most_offline]]" :key="list[0]"
                     class="ranking" :data-testid="list[0]">
              <h3 class="section-title">{{ t[list[0]] }}</h3>
              <p v-if="!list[1].length" class="note">{{ t.noneInPeriod }}</p>
              <ol v-else>
                <li v-for="r in list[1]" :key="r.station_id">
                  <a :href="href(r.station_id)" data-testid="ranked-station">{{ r.name }}</a>
                  <span class="mono">{{ r.station_id }}</span>
                  <b>{{ t.span(Math.round(r.minutes)) }}</b>
                </li>
              </ol>
            </section>
          </div>
          <section v-if="below" class="ranking" data-testid="below-availability">
            <h3 class="section-title">{{ t.belowTitle(pct(below.below)) }}</h3>
            <p v-if="!below.stations.length" class="note">{{ t.noneBelow }}</p>
            <ol v-else>
              <li v-for="r in below.stations" :key="r.station_id">
                <a :href="href(r.station_id)">{{ r.name }}</a>
                <span class="mono">{{ r.station_id }}</span>
                <b>{{ pct(r.availability) }}</b>
              </li>
            </ol>
          </section>
        </template>
        <alerts-panel :t="t"></alerts-panel>
      </main>`,
  };
})();
