/*
 * csm dashboard — live.js: the one mechanism that keeps the page current.
 *
 * The page says what to do; this decides when:
 *   - each `station` event of the stream (GET /api/events) → onStation(update);
 *   - `hello` → onServerTime(time), to count durations on the server's clock;
 *   - the page must catch up (the stream opened again after a break, it said `lagged`, the page
 *     came back into view, or a resync is due) → resync(), which reloads what is on screen and
 *     says whether it worked;
 *   - the state (live, polling, offline) → onState(state), for the indicator.
 * While the stream works, a resync is due every RESYNC_MS (measurements such as voltage change
 * without a status event). When the stream keeps failing, the page is polled every POLL_MS
 * and the stream tried again every RETRY_MS. A hidden page does not poll.
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  const RESYNC_MS = 15000;
  const POLL_MS = 10000;
  const RETRY_MS = 60000;
  const MAX_ERRORS = 3;   // errors of the stream without a successful open before polling

  csm.live = function ({ onStation, onServerTime, resync, onState }) {
    let source = null;
    let everOpen = false;
    let polling = false;
    let timer = null;
    let retryTimer = null;

    // The next resync: soon while polling, now and then while live.
    function schedule(ms) {
      clearTimeout(timer);
      timer = setTimeout(tick, ms);
    }
    async function tick() {
      if (!document.hidden) {
        const ok = await resync();
        if (polling) onState(ok ? 'polling' : 'offline');
      }
      schedule(polling ? POLL_MS : RESYNC_MS);
    }

    function startPolling() {
      if (polling) return;
      polling = true;
      schedule(0);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(connect, RETRY_MS);
    }

    function connect() {
      clearTimeout(retryTimer);
      if (!('EventSource' in window)) { startPolling(); return; }
      if (source) source.close();
      const es = new EventSource('/api/events');
      source = es;
      let errors = 0;
      es.addEventListener('open', () => {
        errors = 0;
        const caughtUp = everOpen || polling;   // events may have been missed meanwhile
        polling = false;
        everOpen = true;
        onState('live');
        if (caughtUp) resync();
        schedule(RESYNC_MS);
      });
      es.addEventListener('hello', (e) => { try { onServerTime(JSON.parse(e.data).server_time); } catch (x) { /* ignore */ } });
      es.addEventListener('station', (e) => { try { onStation(JSON.parse(e.data)); } catch (x) { /* ignore a bad event */ } });
      es.addEventListener('lagged', () => resync());   // events were dropped: catch up
      es.addEventListener('error', () => {
        if (source !== es) return;
        errors += 1;
        if (es.readyState === EventSource.CLOSED || errors >= MAX_ERRORS) {
          es.close(); source = null;
          startPolling();
        } else if (!polling) {
          onState('offline');
        }
      });
    }

    document.addEventListener('visibilitychange', () => { if (!document.hidden) schedule(0); });
    return {
      start() { connect(); schedule(RESYNC_MS); },
    };
  };
})();
