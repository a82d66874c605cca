/*
 * csm dashboard — station-list.js: the side bar: search, "favourites only", the stations of the
 * page with their counts by status, and "show more" for a large fleet. The list itself is
 * loaded by the app (searched and paged by the server); this shows it and says what the user
 * did.
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.StationList = {
    props: {
      t: { type: Object, required: true },
      now: { type: Number, required: true },
      stations: { type: Array, required: true },   // as shown: favourites first
      selectedId: { type: String, default: null },
      favourites: { type: Array, required: true },
      search: { type: String, required: true },
      favOnly: { type: Boolean, required: true },
      loaded: { type: Boolean, required: true },
      failed: { type: Boolean, required: true },
      filtering: { type: Boolean, required: true },   // the page on screen is a search or the favourites
      pageSize: { type: Number, required: true },
      total: { type: Number, required: true },
      canShowMore: { type: Boolean, required: true },
    },
    emits: ['update:search', 'update:favOnly', 'select', 'toggle-favourite', 'show-more', 'retry'],
    computed: {
      hasMore() { return this.pageSize < this.total; },
    },
    methods: {
      isFav(id) { return this.favourites.includes(id); },
      counts(s) { return csm.counts(s, false); },
      updated(s) { return s.updated_at ? this.t.updated(csm.relTime(this.t, s.updated_at, this.now)) : this.t.never; },
    },
    template: `
      <nav class="sidebar" :aria-label="t.stations">
        <div class="list-tools">
          <input type="search" class="search" data-testid="search" :value="search"
                 @input="$emit('update:search', $event.target.value)"
                 :placeholder="t.searchPlaceholder" :aria-label="t.searchLabel" autocomplete="off">
          <button type="button" class="btn btn-toggle" data-testid="fav-filter" :aria-pressed="favOnly ? 'true' : 'false'"
                  @click="$emit('update:favOnly', !favOnly)">
            <svg class="star-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3.2l2.7 5.6 6.1.8-4.5 4.2 1.1 6.1L12 17l-5.4 2.9 1.1-6.1-4.5-4.2 6.1-.8z"/></svg>
            {{ t.favOnly }}
          </button>
        </div>

        <p v-if="!loaded && !failed" class="note">{{ t.loading }}</p>
        <p v-if="failed" class="note note-error">{{ t.listFailed }} <button type="button" class="btn btn-small" @click="$emit('retry')">{{ t.retry }}</button></p>

        <ul class="station-list">
          <li v-for="s in stations" :key="s.station_id" class="station-item"
              :class="{ selected: s.station_id === selectedId }"
              data-testid="station-item" :data-station-id="s.station_id">
            <button type="button" class="station-select" @click="$emit('select', s.station_id)"
                    :aria-current="s.station_id === selectedId ? 'page' : null">
              <span class="station-name">{{ s.name }}</span>
              <span class="station-meta">
                <span class="mono">{{ s.station_id }}</span> · <span>{{ updated(s) }}</span>
              </span>
              <span class="counts">
                <span v-for="c in counts(s)" :key="c.key" class="count" :class="['st-' + c.key, { zero: !c.n }]">
                  <span class="count-dot" aria-hidden="true"></span>{{ t.status[c.key] }} <b>{{ c.n }}</b>
                </span>
                <span v-if="s.last_error" class="badge badge-error">{{ t.unreachable }}</span>
                <span v-else-if="s.stale" class="badge badge-stale">{{ t.stale }}</span>
                <span v-if="s.enabled === false" class="badge">{{ t.disabled }}</span>
              </span>
            </button>
            <button type="button" class="star" data-testid="favourite-toggle" :aria-label="t.favLabel(s.name)"
                    :aria-pressed="isFav(s.station_id) ? 'true' : 'false'" @click="$emit('toggle-favourite', s.station_id)">
              <svg class="star-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3.2l2.7 5.6 6.1.8-4.5 4.2 1.1 6.1L12 17l-5.4 2.9 1.1-6.1-4.5-4.2 6.1-.8z"/></svg>
            </button>
          </li>
        </ul>
        <p v-if="hasMore" class="note" data-testid="list-more">
          {{ t.showing(pageSize, total) }}
          <button v-if="canShowMore" type="button" class="btn btn-small" @click="$emit('show-more')">{{ t.showMore }}</button>
        </p>
        <p v-if="loaded && !stations.length" class="note" data-testid="no-match">{{ filtering ? t.noMatch : t.noStations }}</p>
        <p class="sidebar-foot"><a href="/api/docs">{{ t.apiDocs }}</a></p>
      </nav>`,
  };
})();
