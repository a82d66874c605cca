/*
 * csm dashboard — ocpp-panel.js: under an OCPP station, the operator's menu (a command to the
 * charger and its answer: reset, unlock, in / out of service, read and change the
 * configuration — 1.6 keys, 2.0.1 variables and reports —, ask for a message, clear the cache,
 * start and stop charging; the commands and kinds of the charger's OCPP version) and the charger's
 * message log (its last frames both ways, followed while the panel is open). Both need a token,
 * asked for once per browser tab (csm.token); the menu shows only for operators and admins.
 *
 * API: GET /api/whoami, POST /api/ocpp/charge-points/{id}/commands,
 *      GET /api/ocpp/charge-points/{id}/messages?after=
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  // What each OCPP version has: its commands, kinds of reset and messages to ask for.
  const VERSIONS = {
    '1.6': {
      commands: ['Reset', 'UnlockConnector', 'ChangeAvailability', 'GetConfiguration', 'ChangeConfiguration',
        'TriggerMessage', 'ClearCache', 'RemoteStartTransaction', 'RemoteStopTransaction'],
      resets: ['Soft', 'Hard'],
      triggers: ['StatusNotification', 'MeterValues', 'Heartbeat', 'BootNotification',
        'FirmwareStatusNotification', 'DiagnosticsStatusNotification'],
    },
    '2.0.1': {
      commands: ['Reset', 'UnlockConnector', 'ChangeAvailability', 'GetVariables', 'SetVariables', 'GetBaseReport',
        'TriggerMessage', 'ClearCache', 'RemoteStartTransaction', 'RemoteStopTransaction'],
      resets: ['Immediate', 'OnIdle'],
      triggers: ['StatusNotification', 'MeterValues', 'Heartbeat', 'BootNotification', 'TransactionEvent',
        'FirmwareStatusNotification', 'LogStatusNotification'],
    },
  };
  const REPORTS = ['ConfigurationInventory', 'SummaryInventory', 'FullInventory'];
  // `Component.Variable` (or `Component.Variable[instance]`) as the API names it.
  function variable(text) {
    const m = /^([^.\[\]]+)\.([^[\]]+?)(?:\[([^\]]+)\])?$/.exec(text.trim());
    if (!m) return { component: text.trim(), variable: '' };
    return m[3] ? { component: m[1], variable: m[2], instance: m[3] } : { component: m[1], variable: m[2] };
  }
  // Frames shown, the newest last.
  const SHOWN = 60;

  csm.OcppPanel = {
    props: {
      t: { type: Object, required: true },
      stationId: { type: String, required: true },
      ports: { type: Array, required: true },
      // The OCPP version the charger speaks (none known yet: 1.6's menu).
      version: { type: String, default: null },
    },
    data() {
      return {
        token: csm.token.get(), input: '', me: null, error: null,
        command: 'Reset', kind: '', connector: 1, availability: 'Inoperative', keys: '', key: '', value: '',
        variables: '', report: 'ConfigurationInventory', reports: REPORTS,
        message: 'StatusNotification', idTag: '', sending: false, answer: null, failed: null,
        messages: [], logError: null, timer: null,
      };
    },
    computed: {
      operates() { return this.me && (this.me.role === 'operator' || this.me.role === 'admin'); },
      speaks() { return VERSIONS[this.version] || VERSIONS['1.6']; },
      commands() { return this.speaks.commands; },
      triggers() { return this.speaks.triggers; },
      resets() { return this.speaks.resets; },
      connectors() { return this.ports.map((p) => p.port); },
      needsConnector() { return ['UnlockConnector', 'ChangeAvailability', 'TriggerMessage', 'RemoteStartTransaction', 'RemoteStopTransaction'].includes(this.command); },
    },
    watch: {
      stationId() { this.messages = []; this.answer = null; this.failed = null; this.follow(); },
      // A menu of the charger's version: what the other version alone has is not offered.
      speaks: {
        immediate: true,
        handler(speaks) {
          if (!speaks.commands.includes(this.command)) this.command = 'Reset';
          if (!speaks.resets.includes(this.kind)) this.kind = speaks.resets[0];
          if (!speaks.triggers.includes(this.message)) this.message = 'StatusNotification';
        },
      },
    },
    mounted() { if (this.token) this.signIn(); },
    beforeUnmount() { clearTimeout(this.timer); },
    methods: {
      async signIn() {
        try {
          const r = await csm.getJson('/api/whoami', csm.token.init());
          if (!r.ok) {
            this.error = r.status === 401 ? 'tokenWrong' : 'loadFailed';
            if (r.status === 401) { this.token = ''; this.me = null; csm.token.clear(); }
            return;
          }
          this.me = r.body; this.error = null; this.follow();
        } catch (e) {
          this.error = 'loadFailed';
        }
      },
      submit() {
        this.token = this.input.trim(); this.input = '';
        if (!this.token) return;
        csm.token.set(this.token);
        this.signIn();
      },
      forget() {
        clearTimeout(this.timer);
        this.token = ''; this.me = null; this.messages = []; this.answer = null;
        csm.token.clear();
      },
      body() {
        const c = Number(this.connector);
        switch (this.command) {
          case 'Reset': return { command: 'Reset', type: this.kind };
          case 'UnlockConnector': return { command: 'UnlockConnector', connector: c };
          case 'ChangeAvailability': return { command: 'ChangeAvailability', connector: c, availability: this.availability };
          case 'GetConfiguration': return { command: 'GetConfiguration', keys: this.keys.split(',').map((k) => k.trim()).filter(Boolean) };
          case 'ChangeConfiguration': return { command: 'ChangeConfiguration', key: this.key.trim(), value: this.value };
          case 'GetVariables': return { command: 'GetVariables', variables: this.variables.split(',').filter((v) => v.trim()).map(variable) };
          case 'SetVariables': return { command: 'SetVariables', variables: [{ ...variable(this.key), value: this.value }] };
          case 'GetBaseReport': return { command: 'GetBaseReport', report: this.report };
          case 'TriggerMessage': return { command: 'TriggerMessage', message: this.message, connector: c || null };
          case 'RemoteStartTransaction': return { command: 'RemoteStartTransaction', id_tag: this.idTag.trim(), connector: c || null };
          case 'RemoteStopTransaction': return { command: 'RemoteStopTransaction', connector: c };
          default: return { command: this.command };
        }
      },
      async send() {
        this.sending = true; this.answer = null; this.failed = null;
        try {
          const r = await csm.getJson(`/api/ocpp/charge-points/${encodeURIComponent(this.stationId)}/commands`,
            csm.token.init({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(this.body()) }));
          if (r.ok) this.answer = r.body;
          else this.failed = (r.body && r.body.error) || `HTTP ${r.status}`;
        } catch (e) {
          this.failed = this.t.networkError;
        } finally {
          this.sending = false;
          this.poll();
        }
      },
      // Reads the frames after the last one shown, then again in 3 s while the panel is open.
      follow() { clearTimeout(this.timer); this.poll(); },
      async poll() {
        clearTimeout(this.timer);
        if (!this.me) return;
        const id = this.stationId;
        const after = this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
        try {
          const r = await csm.getJson(`/api/ocpp/charge-points/${encodeURIComponent(id)}/messages?after=${after}&limit=${SHOWN}`, csm.token.init());
          if (id !== this.stationId) return;
          if (!r.ok) { this.logError = (r.body && r.body.error) || `HTTP ${r.status}`; }
          else {
            const fresh = r.body.messages;
            // A log that starts again (the charger moved to another instance) replaces the old one.
            this.messages = (fresh.length && after && fresh[0].seq <= after ? fresh : this.messages.concat(fresh)).slice(-SHOWN);
            this.logError = null;
          }
        } catch (e) {
          this.logError = this.t.networkError;
        }
        if (this.me) this.timer = setTimeout(() => this.poll(), 3000);
      },
      clock(iso) { return new Date(iso).toLocaleTimeString(this.t.htmlLang, { hour12: false }) + '.' + String(new Date(iso).getMilliseconds()).padStart(3, '0'); },
    },
    template: `
      <section class="ocpp-panel" data-testid="ocpp-panel">
        <h3 class="section-title">{{ t.operatorTitle }}</h3>
        <p v-if="error" class="note note-error">{{ t[error] }}</p>
        <form v-if="!me" class="token-form" @submit.prevent="submit">
          <label for="operator-token">{{ t.tokenLabel }}</label>
          <input id="operator-token" type="password" autocomplete="off" v-model="input" data-testid="operator-token">
          <button type="submit" class="btn btn-primary">{{ t.tokenShow }}</button>
        </form>
        <template v-else>
          <p class="note">{{ t.signedInAs(me.name, me.role) }}
            <button type="button" class="btn btn-ghost" @click="forget">{{ t.tokenForget }}</button></p>
          <p v-if="!operates" class="note">{{ t.operatorOnly }}</p>
          <form v-else class="command-form" data-testid="command-form" @submit.prevent="send">
            <label>{{ t.commandLabel }}
              <select v-model="command" data-testid="command-select">
                <option v-for="c in commands" :key="c" :value="c">{{ t.commands[c] }} · {{ c }}</option>
              </select>
            </label>
            <label v-if="command === 'Reset'">
              <select v-model="kind" data-testid="reset-kind"><option v-for="k in resets" :key="k" :value="k">{{ t.resetType[k] }}</option></select>
            </label>
            <label v-if="needsConnector">{{ t.connectorLabel }}
              <select v-model="connector" data-testid="command-connector">
                <option v-if="command === 'ChangeAvailability'" :value="0">{{ t.wholeCharger }}</option>
                <option v-for="c in connectors" :key="c" :value="c">{{ c }}</option>
              </select>
            </label>
            <label v-if="command === 'ChangeAvailability'">
              <select v-model="availability"><option v-for="a in ['Inoperative', 'Operative']" :key="a" :value="a">{{ t.availabilityType[a] }}</option></select>
            </label>
            <label v-if="command === 'GetConfiguration'">{{ t.keysLabel }} <input v-model="keys" type="text"></label>
            <template v-if="command === 'ChangeConfiguration'">
              <label>{{ t.keyLabel }} <input v-model="key" type="text" required maxlength="50"></label>
              <label>{{ t.valueLabel }} <input v-model="value" type="text" maxlength="500"></label>
            </template>
            <label v-if="command === 'GetVariables'">{{ t.variablesLabel }} <input v-model="variables" type="text" required placeholder="OCPPCommCtrlr.HeartbeatInterval"></label>
            <template v-if="command === 'SetVariables'">
              <label>{{ t.variableLabel }} <input v-model="key" type="text" required maxlength="101" placeholder="OCPPCommCtrlr.HeartbeatInterval"></label>
              <label>{{ t.valueLabel }} <input v-model="value" type="text" maxlength="1000"></label>
            </template>
            <label v-if="command === 'GetBaseReport'">{{ t.reportLabel }}
              <select v-model="report"><option v-for="r in reports" :key="r" :value="r">{{ r }}</option></select>
            </label>
            <label v-if="command === 'TriggerMessage'">{{ t.messageLabel }}
              <select v-model="message"><option v-for="m in triggers" :key="m" :value="m">{{ m }}</option></select>
            </label>
            <label v-if="command === 'RemoteStartTransaction'">{{ t.idTagLabel }} <input v-model="idTag" type="text" required :maxlength="version === '2.0.1' ? 36 : 20"></label>
            <button type="submit" class="btn btn-primary" :disabled="sending" data-testid="command-send">{{ sending ? t.sending : t.send }}</button>
          </form>
          <p v-if="failed" class="note note-error" data-testid="command-error">{{ t.commandFailed }}{{ failed }}</p>
          <div v-if="answer" class="command-answer" data-testid="command-answer">
            <p><b>{{ answer.action }}</b> · {{ t.answered(answer.status || t.keysRead((answer.configuration || answer.variables || []).length), answer.took_ms) }}</p>
            <table v-if="answer.configuration" class="alert-table" data-testid="configuration">
              <tbody><tr v-for="k in answer.configuration" :key="k.key">
                <td class="mono">{{ k.key }}</td><td class="mono">{{ k.value }}</td><td>{{ k.readonly ? t.readOnly : '' }}</td>
              </tr></tbody>
            </table>
            <p v-if="answer.unknown_keys && answer.unknown_keys.length" class="note">{{ t.unknownKeys(answer.unknown_keys.join(', ')) }}</p>
            <table v-if="answer.variables" class="alert-table" data-testid="variables">
              <tbody><tr v-for="(v, i) in answer.variables" :key="i">
                <td class="mono">{{ v.component }}{{ v.evse ? ' #' + v.evse : '' }}.{{ v.variable }}{{ v.instance ? '[' + v.instance + ']' : '' }}</td>
                <td class="mono">{{ v.value }}</td><td>{{ v.status }}</td>
              </tr></tbody>
            </table>
            <pre v-if="answer.report" class="message-frame" data-testid="report">{{ answer.report.data.map((e) => JSON.stringify(e)).join('\\n') }}</pre>
          </div>
          <h3 class="section-title">{{ t.messagesTitle }}</h3>
          <p v-if="logError" class="note note-error">{{ t.messagesFailed }}{{ logError }}</p>
          <p v-else-if="!messages.length" class="note">{{ t.noMessages }}</p>
          <ol v-else class="message-log" data-testid="message-log">
            <li v-for="m in messages" :key="m.seq" :data-direction="m.direction">
              <time :datetime="m.at">{{ clock(m.at) }}</time>
              <span class="message-direction">{{ t.direction[m.direction] }}</span>
              <span class="message-action">{{ m.action || '' }}</span>
              <code class="message-frame">{{ m.frame }}</code>
            </li>
          </ol>
        </template>
      </section>`,
  };
})();
