"""An OCPP 2.0.1 charging station built on the Python `ocpp` package (an implementation csm shares
no code with, which checks every message both ways against the 2.0.1 JSON schemas): it offers
both versions and gets 2.0.1, boots, runs a charging session with TransactionEvents and meter
values, and checks through csm's HTTP API what csm made of it.

It then answers, as the OCPP 2.0.1 specification says, each operator's command csm sends it
through csm's API (and csm-cli), named as for any charger and sent as 2.0.1 messages, and leaves.

Usage: python charger201.py http://127.0.0.1:PORT TOKEN CSM_CLI   (run by scripts/ocpp-client.sh)
"""

import asyncio
import json
import sys

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from through_csm import Csm, now, until

BASE = sys.argv[1].rstrip("/")
TOKEN = sys.argv[2]
CLI = sys.argv[3]
ID = "PY-CP201"


def sample(value, measurand, unit=None, multiplier=None, phase=None):
    """A sampled value as 2.0.1 sends it: a number, its unit of measure apart."""
    entry = {"value": value, "measurand": measurand}
    if unit is not None:
        entry["unit_of_measure"] = {"unit": unit} if multiplier is None else {"unit": unit, "multiplier": multiplier}
    if phase is not None:
        entry["phase"] = phase
    return entry


class Station(ChargePoint):
    """One EVSE with one connector and a small device model."""

    variables = {
        ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
        ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
        ("SecurityCtrlr", "BasicAuthPassword"): "",
    }
    transaction = None
    seq = 0
    register_wh = 10_000
    later = []

    def soon(self, coroutine):
        # What a station sends after answering (a status, a transaction, a report) goes after the answer.
        async def after():
            await asyncio.sleep(0.2)
            await coroutine
        self.later.append(asyncio.create_task(after()))

    async def status(self, status):
        await self.call(call.StatusNotification(timestamp=now(), connector_status=status, evse_id=1, connector_id=1))

    async def event(self, event_type, trigger, charging_state, meter=None):
        self.seq += 1
        info = {"transaction_id": self.transaction, "charging_state": charging_state}
        if event_type == "Ended":
            info["stopped_reason"] = "Remote" if trigger == "RemoteStop" else "EVDisconnected"
        await self.call(call.TransactionEvent(
            event_type=event_type, timestamp=now(), trigger_reason=trigger, seq_no=self.seq,
            transaction_info=info, meter_value=meter))

    def register(self, context):
        return [{"timestamp": now(), "sampled_value": [
            {**sample(self.register_wh, "Energy.Active.Import.Register", "Wh"), "context": context}]}]

    async def begin(self, transaction, remote_start_id=None):
        self.transaction = transaction
        await self.status("Occupied")
        await self.call(call.TransactionEvent(
            event_type="Started", timestamp=now(), trigger_reason="RemoteStart" if remote_start_id else "CablePluggedIn",
            seq_no=self.seq, evse={"id": 1, "connector_id": 1},
            transaction_info={"transaction_id": transaction, "charging_state": "EVConnected",
                              **({"remote_start_id": remote_start_id} if remote_start_id is not None else {})},
            meter_value=self.register("Transaction.Begin")))

    async def finish(self, trigger="EVCommunicationLost"):
        self.register_wh += 500
        await self.event("Ended", trigger, "Idle", self.register("Transaction.End"))
        self.transaction = None
        await self.status("Available")

    @on(Action.reset)
    def on_reset(self, type, **_):
        return call_result.Reset(status="Scheduled" if type == "OnIdle" else "Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, evse_id, connector_id, **_):
        return call_result.UnlockConnector(status="Unlocked" if (evse_id, connector_id) == (1, 1) else "UnknownConnector")

    @on(Action.change_availability)
    def on_availability(self, operational_status, evse=None, **_):
        self.soon(self.status("Unavailable" if operational_status == "Inoperative" else "Available"))
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data, **_):
        results = []
        for data in get_variable_data:
            key = (data["component"]["name"], data["variable"]["name"])
            known = key in self.variables and key[1] != "BasicAuthPassword"
            result = {"attribute_status": "Accepted" if known else "UnknownVariable",
                      "component": data["component"], "variable": data["variable"]}
            if known:
                result["attribute_value"] = self.variables[key]
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data, **_):
        results = []
        for data in set_variable_data:
            key = (data["component"]["name"], data["variable"]["name"])
            known = key in self.variables
            if known:
                self.variables[key] = data["attribute_value"]
            results.append({"attribute_status": "Accepted" if known else "UnknownVariable",
                            "component": data["component"], "variable": data["variable"]})
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id, report_base, **_):
        entries = [{"component": {"name": c}, "variable": {"name": v},
                    "variable_attribute": [{"value": value, "mutability": "ReadWrite"}]}
                   for (c, v), value in self.variables.items() if v != "BasicAuthPassword"]

        async def report():
            for seq, part in enumerate([entries[:1], entries[1:]]):
                await self.call(call.NotifyReport(request_id=request_id, generated_at=now(), seq_no=seq,
                                                  tbc=seq == 0, report_data=part))
        self.soon(report())
        return call_result.GetBaseReport(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger(self, requested_message, evse=None, **_):
        if requested_message == "StatusNotification":
            self.soon(self.status("Occupied" if self.transaction else "Available"))
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "Heartbeat":
            self.soon(self.call(call.Heartbeat()))
            return call_result.TriggerMessage(status="Accepted")
        return call_result.TriggerMessage(status="NotImplemented")

    @on(Action.clear_cache)
    def on_clear_cache(self, **_):
        return call_result.ClearCache(status="Accepted")

    @on(Action.request_start_transaction)
    def on_request_start(self, id_token, remote_start_id, evse_id=None, **_):
        if self.transaction is not None:
            return call_result.RequestStartTransaction(status="Rejected")
        self.soon(self.begin(f"remote-{remote_start_id}", remote_start_id))
        return call_result.RequestStartTransaction(status="Accepted")

    @on(Action.request_stop_transaction)
    def on_request_stop(self, transaction_id, **_):
        if transaction_id != self.transaction:
            return call_result.RequestStopTransaction(status="Rejected")
        self.soon(self.finish("RemoteStop"))
        return call_result.RequestStopTransaction(status="Accepted")


CSM = Csm(BASE, TOKEN, CLI, ID)
command, cli, api, port = CSM.command, CSM.cli, CSM.api, CSM.port


def near(a, b):
    return a is not None and abs(a - b) < 1e-6


async def main():
    url = BASE.replace("http://", "ws://") + f"/ocpp/{ID}"
    async with websockets.connect(url, subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1", ws.subprotocol
        cp = Station(ID, ws)
        listener = asyncio.create_task(cp.start())
        boot = await cp.call(call.BootNotification(
            charging_station={"model": "PyStation", "vendor_name": "ocpp-py", "serial_number": "PY-0001",
                              "firmware_version": "2.0.1-py"},
            reason="PowerUp"))
        assert boot.status == "Accepted" and boot.interval > 0, boot
        print(f"BootNotification: {boot.status}, interval {boot.interval} s, csm's time {boot.current_time}")
        await cp.call(call.Heartbeat())
        await cp.status("Available")
        await until("port 1 free", lambda: (port(1) or {}).get("status") == "free")

        await cp.begin("py-tx-1")
        cp.register_wh += 2_500
        await cp.event("Updated", "MeterValuePeriodic", "Charging", [{"timestamp": now(), "sampled_value": [
            sample(7.4, "Power.Active.Import", "W", 3),
            sample(cp.register_wh, "Energy.Active.Import.Register", "Wh"),
            sample(231.0, "Voltage", "V", phase="L1-N"),
            sample(229.0, "Voltage", "V", phase="L2-N"),
            sample(16, "Current.Import", "A", phase="L1"),
            sample(16, "Current.Import", "A", phase="L2"),
            sample(0.2, "Current.Import", "A", phase="N"),
        ]}])
        charging = await until("port 1 charging with its meter values",
                               lambda: (p := port(1)) and p["status"] == "occupied" and p["power"] and p)
        assert near(charging["power"], 7400), charging
        assert near(charging["energy_kwh"], 2.5), charging
        assert near(charging["voltage"], 230.0) and near(charging["current"], 32.0), charging
        assert charging["raw_code"].startswith("Occupied (Charging)"), charging
        print(f"csm shows port 1 {charging['status']} ({charging['raw_code']}): {charging['power']:.0f} W, "
              f"{charging['voltage']:.1f} V, {charging['current']:.1f} A, {charging['energy_kwh']:.2f} kWh this session")
        await cp.call(call.MeterValues(evse_id=1, meter_value=[{"timestamp": now(), "sampled_value": [
            sample(3.6, "Power.Active.Import", "kW")]}]))
        await until("the MeterValues' power", lambda: near((port(1) or {}).get("power"), 3600))
        await cp.finish()
        await until("port 1 free again", lambda: (port(1) or {}).get("status") == "free")
        sessions = await until("the session in csm's history", lambda: (
            s := api(f"/api/stations/{ID}/sessions?port=1")["sessions"]) and s[0].get("ended_at") and s)
        assert near(sessions[0]["energy_kwh"], 3.0), sessions[0]
        print(f"csm recorded a session of {sessions[0]['energy_kwh']} kWh "
              f"(the register from its start to its end)")
        await operate(cp)
        listener.cancel()
        await cp._connection.close()
    gone = await until("csm to show the charger offline once its socket closed", lambda: (
        s := api(f"/api/stations/{ID}")) and s["last_error"]
        and all(p["status"] == "offline" for p in s["ports"]) and s)
    assert gone["stale"] is True, gone
    registry = api("/api/ocpp/charge-points?all=true")["charge_points"]
    me = next(c for c in registry if c["station_id"] == ID)
    assert (me["connection"], me["ocpp_version"], me["vendor"], me["model"], me["serial"]) == (
        "disconnected", "2.0.1", "ocpp-py", "PyStation", "PY-0001"), me
    print(f"the registry: {me['connection']}, OCPP {me['ocpp_version']}, {me['vendor']} {me['model']} "
          f"({me['serial']}), last {me['last_action']}")
    print("python ocpp 2.0.1 charging station: ok")


async def operate(cp):
    """Each operator's command, named as for any charger, reaching the station as 2.0.1 messages."""
    print("operators' commands (csm's API -> the station, in OCPP 2.0.1 -> its answer):")
    loop = asyncio.get_running_loop()

    async def send(body, expect=200):
        return await loop.run_in_executor(None, command, body, expect)

    assert (await send({"command": "Reset", "type": "OnIdle"}))["status"] == "Scheduled"
    assert "Immediate or OnIdle" in (await send({"command": "Reset", "type": "Soft"}, 400))["error"]
    assert (await send({"command": "UnlockConnector", "connector": 1}))["status"] == "Unlocked"
    assert "use GetVariables" in (await send({"command": "GetConfiguration"}, 400))["error"]
    read = await send({"command": "GetVariables", "variables": [
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
        {"component": "OCPPCommCtrlr", "variable": "NoSuchVariable"}]})
    assert [(v["variable"], v["value"], v["status"]) for v in read["variables"]] == [
        ("HeartbeatInterval", "300", "Accepted"), ("NoSuchVariable", None, "UnknownVariable")], read
    changed = await send({"command": "SetVariables", "variables": [
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "120"}]})
    assert changed["variables"][0]["status"] == "Accepted", changed
    assert cp.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "120"
    table = await loop.run_in_executor(None, cli, "command", ID, "get-variables", "OCPPCommCtrlr.HeartbeatInterval")
    assert "HeartbeatInterval" in table and "120" in table, table
    print("  csm-cli ocpp command PY-CP201 get-variables OCPPCommCtrlr.HeartbeatInterval:\n"
          + "\n".join("    " + line for line in table.splitlines()))
    report = await send({"command": "GetBaseReport", "report": "ConfigurationInventory"})
    assert report["status"] == "Accepted" and report["report"]["complete"] is True, report
    names = [(e["component"]["name"], e["variable"]["name"]) for e in report["report"]["data"]]
    assert names == [("OCPPCommCtrlr", "HeartbeatInterval"), ("SampledDataCtrlr", "TxUpdatedInterval")], names
    assert (await send({"command": "TriggerMessage", "message": "StatusNotification", "connector": 1}))["status"] == "Accepted"
    assert "OCPP 1.6 only" in (await send({"command": "TriggerMessage", "message": "DiagnosticsStatusNotification"}, 400))["error"]
    assert (await send({"command": "ClearCache"}))["status"] == "Accepted"
    # The password variable is written, never shown in the message log.
    await send({"command": "SetVariables", "variables": [
        {"component": "SecurityCtrlr", "variable": "BasicAuthPassword", "value": "py-secret-password-0123"}]})

    # An operator starts a session for a rider, then frees the port.
    assert (await send({"command": "RequestStartTransaction", "id_tag": "OPERATOR-2001", "connector": 1}))["status"] == "Accepted"
    await until("port 1 charging after the remote start", lambda: (port(1) or {}).get("status") == "occupied")
    assert (await send({"command": "RemoteStopTransaction", "connector": 1}))["status"] == "Accepted"
    await until("port 1 free after the remote stop", lambda: (port(1) or {}).get("status") == "free")

    # Out of service and back.
    assert (await send({"command": "ChangeAvailability", "connector": 1, "availability": "Inoperative"}))["status"] == "Accepted"
    out = await until("port 1 out of service", lambda: (p := port(1)) and p["status"] == "unavailable" and p)
    print(f"  port 1 after Inoperative: {out['status']} ({out['raw_code']}), not a fault")
    assert (await send({"command": "ChangeAvailability", "connector": 1, "availability": "Operative"}))["status"] == "Accepted"
    await until("port 1 free again after the operator's availability", lambda: (port(1) or {}).get("status") == "free")

    log = api(f"/api/ocpp/charge-points/{ID}/messages", TOKEN)["messages"]
    actions = {(m["direction"], m["action"]) for m in log}
    for action in ("Reset", "GetVariables", "SetVariables", "GetBaseReport", "RequestStartTransaction",
                   "RequestStopTransaction", "NotifyReport", "TransactionEvent"):
        assert ("out", action) in actions and ("in", action) in actions, (action, sorted(actions))
    text = json.dumps(log)
    assert "OPERATOR-2001" not in text and "py-secret-password" not in text, "a secret in full in the message log"
    me = api(f"/api/ocpp/charge-points/{ID}")
    assert (me["connection"], me["ocpp_version"]) == ("connected", "2.0.1"), me


asyncio.run(main())
