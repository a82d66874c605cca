/*
 * csm dashboard — alerts-panel.js: on the operators' page, the alert rules and the latest
 * alerts with their delivery state. They need the admin token, asked for here and kept only
 * for this browser tab (sessionStorage).
 *
 * API: GET /api/alerts/rules, GET /api/alerts/history (Authorization: Bearer <token>)
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.AlertsPanel = {
    props: { t: { type: Object, required: true } },
    data() {
      return { token: csm.token.get(), input: '', rules: null, alerts: null, error: null };
    },
    mounted() { if (this.token) this.load(); },
    methods: {
      async load() {
        const init = csm.token.init();
        try {
          const [rules, history] = await Promise.all([
            csm.getJson('/api/alerts/rules', init),
            csm.getJson('/api/alerts/history?limit=20', init),
          ]);
          const refused = [rules, history].find((r) => !r.ok);
          if (refused) {
            this.error = refused.status === 401 ? 'tokenWrong' : refused.status === 403 ? 'roleTooLow' : 'alertsFailed';
            if (refused.status === 401) this.forget(true);
            return;
          }
          this.rules = rules.body.rules; this.alerts = history.body.alerts; this.error = null;
        } catch (e) {
          this.error = 'alertsFailed';
        }
      },
      submit() {
        this.token = this.input.trim(); this.input = '';
        if (!this.token) return;
        csm.token.set(this.token);
        this.load();
      },
      forget(keepError) {
        this.token = ''; this.rules = null; this.alerts = null;
        if (!keepError) this.error = null;
        csm.token.clear();
      },
      where(rule) {
        return rule.stations === 'all' ? this.t.allStations : rule.stations.join(', ');
      },
      when(iso) { return new Date(iso).toLocaleString(this.t.htmlLang); },
    },
    template: `
      <section class="alerts-panel" data-testid="alerts-panel">
        <h3 class="section-title">{{ t.alertsTitle }}</h3>
        <p v-if="error" class="note note-error" data-testid="alerts-error">{{ t[error] }}</p>
        <form v-if="!token" class="token-form" @submit.prevent="submit">
          <label for="admin-token">{{ t.tokenLabel }}</label>
          <input id="admin-token" type="password" autocomplete="off" v-model="input" data-testid="admin-token">
          <button type="submit" class="btn btn-primary">{{ t.tokenShow }}</button>
        </form>
        <template v-else-if="rules">
          <p class="note" v-if="!rules.length">{{ t.noRules }}</p>
          <table v-else class="alert-table" data-testid="alert-rules">
            <thead><tr><th>#</th><th>{{ t.ruleKind }}</th><th>{{ t.ruleWhere }}</th><th>{{ t.ruleChannel }}</th></tr></thead>
            <tbody>
              <tr v-for="r in rules" :key="r.id">
                <td class="mono">{{ r.id }}</td><td>{{ t.ruleKinds[r.kind] || r.kind }}</td>
                <td>{{ where(r) }}</td><td class="mono">{{ r.channel }}</td>
              </tr>
            </tbody>
          </table>
          <h3 class="section-title">{{ t.recentAlerts }}</h3>
          <p class="note" v-if="!alerts.length">{{ t.noAlerts }}</p>
          <ol v-else class="alert-history" data-testid="alert-history">
            <li v-for="a in alerts" :key="a.id" :data-state="a.state">
              <time :datetime="a.at">{{ when(a.at) }}</time>
              <span class="alert-state">{{ t.deliveryState[a.state] }}</span>
              <span>{{ a.text }}</span>
              <span v-if="a.last_error" class="alert-error">{{ a.last_error }}</span>
            </li>
          </ol>
          <button type="button" class="btn btn-ghost" @click="forget(false)">{{ t.tokenForget }}</button>
        </template>
      </section>`,
  };
})();
