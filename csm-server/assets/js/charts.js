/*
 * csm dashboard — charts.js: what the history views draw with. `csm.chart` puts a uPlot chart
 * (assets/vendor/uPlot.iife.min.js) into an element, follows the element's width and is
 * destroyed with it; `csm.HeatMap` is the weekday × hour occupancy table; `csm.timeline` cuts a
 * port's readings into status spans.
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  // The colour of a CSS custom property of the page (charts draw on canvas, outside CSS).
  csm.cssColor = function (name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  };

  // A uPlot chart in `el` with `opts` (without width) and `data`; returns a handle whose
  // destroy() removes it. The chart follows the element's width.
  csm.chart = function (el, opts, data) {
    const width = () => Math.max(160, Math.floor(el.clientWidth || 300));
    const plot = new uPlot(Object.assign({ width: width() }, opts), data, el);
    let observer = null;
    if (window.ResizeObserver) {
      observer = new ResizeObserver(() => {
        const w = width();
        if (w !== plot.width) plot.setSize({ width: w, height: plot.height });
      });
      observer.observe(el);
    }
    return { plot, destroy() { if (observer) observer.disconnect(); plot.destroy(); } };
  };

  // Time axis labels in the page's language, 24-hour clock (`dates`: day labels instead).
  csm.timeAxis = function (t, dates) {
    const opts = dates ? { month: 'numeric', day: 'numeric' } : { hour: '2-digit', minute: '2-digit', hour12: false };
    return { space: dates ? 48 : 60, values: (u, splits) => splits.map((s) => new Date(s * 1000).toLocaleString(t.htmlLang, opts)) };
  };

  // Bars for uPlot, when the bundle has its paths helpers.
  csm.bars = () => (uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 48] }) : undefined);

  // The date axis of daily bars: one label a day, under its bar (every few days when they
  // would not fit), each the statistics' own date.
  csm.dayAxis = function (t, daily, x) {
    const label = (date) => new Date(date + 'T12:00:00Z')
      .toLocaleDateString(t.htmlLang, { month: 'numeric', day: 'numeric', timeZone: 'UTC' });
    return {
      space: 48,
      splits: () => x,
      values: (u, splits) => {
        const room = u.bbox.width / (window.devicePixelRatio || 1);
        const every = Math.max(1, Math.ceil((splits.length * 52) / Math.max(room, 1)));
        return splits.map((_, i) => (i % every === 0 && daily[i] ? label(daily[i].date) : ''));
      },
    };
  };

  // Each day's occupancy (`stats.daily`) as bars, a day wide each.
  csm.dailyChart = function (el, daily, t) {
    const HALF_DAY = 43200;
    const x = daily.map((d) => Date.parse(d.date + 'T12:00:00Z') / 1000);
    const y = daily.map((d) => (d.utilisation === null ? null : Math.round(d.utilisation * 1000) / 10));
    const color = csm.cssColor('--occupied-fg');
    const range = [x[0] - HALF_DAY, x[x.length - 1] + HALF_DAY];
    return csm.chart(el, {
      height: 170,
      scales: { x: { time: true, range: () => range }, y: { range: () => [0, 100] } },
      series: [{}, { label: t.occupancyPct, stroke: color, fill: color + '55', paths: csm.bars(), points: { show: false } }],
      axes: [csm.dayAxis(t, daily, x), { label: '%', size: 40 }],
      legend: { show: false },
    }, [x, y]);
  };

  // A port's readings (oldest first) as spans of one status: [{ status, from, to }] in epoch ms,
  // each reading's status holding until the next reading, the last until `end`.
  csm.timeline = function (readings, start, end) {
    const spans = [];
    readings.forEach((r, i) => {
      const from = Math.max(start, csm.ms(r.at));
      const next = i + 1 < readings.length ? csm.ms(readings[i + 1].at) : end;
      const status = csm.status(r.status);
      const last = spans[spans.length - 1];
      if (last && last.status === status && last.to >= from) last.to = Math.min(next, end);
      else if (next > from) spans.push({ status, from, to: Math.min(next, end) });
    });
    return spans;
  };

  // Weekday × hour occupancy (`stats.occupancy`: 7 rows, Monday first, of 24 fractions or null).
  csm.HeatMap = {
    props: {
      t: { type: Object, required: true },
      occupancy: { type: Array, required: true },
      timezone: { type: String, default: '' },
    },
    methods: {
      style(v) {
        if (v === null || v === undefined) return {};
        return { '--heat': String(Math.round(v * 100)) + '%' };
      },
      title(day, hour, v) {
        return this.t.heatCell(this.t.weekdays[day], hour, v === null || v === undefined ? null : Math.round(v * 100));
      },
    },
    template: `
      <figure class="heat" data-testid="heat-map">
        <div class="heat-grid" role="table" :aria-label="t.heatTitle">
          <div class="heat-row heat-hours" role="row">
            <span class="heat-label" role="columnheader"></span>
            <span v-for="h in 24" :key="h" class="heat-hour" role="columnheader">{{ (h - 1) % 3 === 0 ? h - 1 : '' }}</span>
          </div>
          <div v-for="(row, day) in occupancy" :key="day" class="heat-row" role="row">
            <span class="heat-label" role="rowheader">{{ t.weekdays[day] }}</span>
            <span v-for="(v, hour) in row" :key="hour" class="heat-cell" role="cell" data-testid="heat-cell"
                  :class="{ 'heat-empty': v === null }" :style="style(v)" :title="title(day, hour, v)"></span>
          </div>
        </div>
        <figcaption class="heat-caption">{{ t.heatCaption(timezone) }}</figcaption>
      </figure>`,
  };
})();
