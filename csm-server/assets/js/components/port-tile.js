/*
 * csm dashboard — port-tile.js: one port of the open station: its number, status (with a
 * symbol, never colour alone), how long it has had it, the readings the vendor sends, and for
 * an occupied port when it will likely be free (its basis on hover, or on a tap).
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.PortTile = {
    props: {
      port: { type: Object, required: true },
      t: { type: Object, required: true },
      now: { type: Number, required: true },   // the server's clock, ms
      flashing: { type: Boolean, default: false },
    },
    data() { return { showBasis: false }; },
    computed: {
      st() { return csm.status(this.port.status); },
      estimate() { return this.st === 'occupied' ? this.port.free_estimate || null : null; },
      // "free in ~25 min"
      freeIn() {
        const at = this.estimate && csm.ms(this.estimate.at);
        if (at === null || at === undefined) return '';
        const minutes = Math.round((at - this.now) / 60000);
        return minutes < 1 ? this.t.freeSoon : this.t.freeIn(minutes);
      },
      basis() {
        const e = this.estimate;
        if (!e) return '';
        if (e.basis === 'vendor') return this.t.basisVendor;
        return e.scope === 'fleet' ? this.t.basisFleet(e.sessions) : this.t.basisStation(e.sessions);
      },
      icon() { return csm.ICONS[this.st]; },
      // "for 1 h 5 min" of "Charging for 1 h 5 min" ('' when `since` is unknown)
      duration() {
        const since = csm.ms(this.port.since);
        if (since === null) return '';
        const diff = this.now - since;
        return diff < 60000 ? this.t.justNow : this.t.forDur(this.t.dur(...csm.parts(diff)));
      },
      hasReadings() {
        return ['voltage', 'current', 'power', 'energy_kwh', 'session_ends_at'].some((k) => csm.has(this.port[k]));
      },
    },
    methods: {
      has: csm.has,
      num(v, digits) { return csm.num(this.t, v, digits); },
      clock(iso) { return csm.clock(this.t, iso, this.now, false); },
    },
    template: `
      <li class="tile" :class="['st-' + st, { flash: flashing }]"
          data-testid="port-tile" :data-status="st" :data-port="port.port">
        <div class="tile-head">
          <span class="port-no"><span class="port-label">{{ t.port }}</span> {{ port.port }}</span>
          <svg class="st-icon" viewBox="0 0 24 24" aria-hidden="true"><path :d="icon"/></svg>
        </div>
        <p class="tile-status"><strong>{{ t.status[st] }}</strong> <span class="dur" v-if="port.since">{{ duration }}</span></p>
        <p v-if="freeIn" class="estimate" data-testid="free-estimate" :data-basis="estimate.basis">
          <button type="button" class="estimate-btn" :title="basis" :aria-expanded="showBasis" @click="showBasis = !showBasis">{{ freeIn }}</button>
          <span v-if="showBasis" class="estimate-basis">{{ basis }}</span>
        </p>
        <dl class="readings" v-if="hasReadings">
          <div v-if="has(port.voltage)"><dt>{{ t.voltage }}</dt><dd>{{ num(port.voltage, 1) }} V</dd></div>
          <div v-if="has(port.current)"><dt>{{ t.current }}</dt><dd>{{ num(port.current, 2) }} A</dd></div>
          <div v-if="has(port.power)"><dt>{{ t.power }}</dt><dd>{{ num(port.power, 0) }} W</dd></div>
          <div v-if="has(port.energy_kwh)"><dt>{{ t.energy }}</dt><dd>{{ num(port.energy_kwh, 2) }} kWh</dd></div>
          <div v-if="has(port.session_ends_at)"><dt>{{ t.endsAt }}</dt><dd><time :datetime="port.session_ends_at">{{ clock(port.session_ends_at) }}</time></dd></div>
        </dl>
      </li>`,
  };
})();
