"""An OCPP 1.6J charge point built on the Python `ocpp` package (an implementation csm shares
no code with): it connects to csm, boots, runs one charging session with meter values (coming
back on a new socket in the middle of it, as after a dropped link), stops and goes away, and checks through csm's HTTP API what csm made of it.

It then answers, as the OCPP 1.6 specification says, each operator's command csm sends it:
through csm's API (and csm-cli), with the charger's answer checked at each step, and reads its
message log back.

Usage: python charger.py http://127.0.0.1:PORT TOKEN CSM_CLI   (run by scripts/ocpp-client.sh)
"""

import asyncio
import json
import sys

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from through_csm import Csm, now, until

BASE = sys.argv[1].rstrip("/")
TOKEN = sys.argv[2]
CLI = sys.argv[3]
ID = "PY-CP1"


def payload(name, **fields):
    # ocpp 2.x names the call classes after the action; 1.x added "Payload".
    cls = getattr(call, name, None) or getattr(call, name + "Payload")
    return cls(**fields)


def result(name, **fields):
    cls = getattr(call_result, name, None) or getattr(call_result, name + "Payload")
    return cls(**fields)


class Charger(ChargePoint):
    """Answers csm's calls as the specification says: one connector, a small configuration."""

    config = {
        "HeartbeatInterval": ["300", False],
        "MeterValueSampleInterval": ["60", False],
        "WebSocketPingInterval": ["0", False],
        "NumberOfConnectors": ["1", True],
        "SupportedFeatureProfiles": ["Core,RemoteTrigger", True],
    }
    transaction = None
    later = []

    def soon(self, coroutine):
        # What a charger sends after answering (a status, a transaction) goes after the answer.
        async def after():
            await asyncio.sleep(0.2)
            await coroutine
        self.later.append(asyncio.create_task(after()))

    async def status(self, status):
        await self.call(payload("StatusNotification", connector_id=1, error_code="NoError", status=status))

    async def begin(self, id_tag):
        started = await self.call(payload("StartTransaction", connector_id=1, id_tag=id_tag, meter_start=0, timestamp=now()))
        self.transaction = started.transaction_id
        await self.status("Charging")

    async def finish(self):
        await self.call(payload("StopTransaction", meter_stop=1200, timestamp=now(), transaction_id=self.transaction))
        self.transaction = None
        await self.status("Available")

    @on(Action.reset)
    def on_reset(self, type, **_):
        return result("Reset", status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id, **_):
        return result("UnlockConnector", status="Unlocked" if connector_id == 1 else "NotSupported")

    @on(Action.change_availability)
    def on_availability(self, connector_id, type, **_):
        if self.transaction is not None and type == "Inoperative":
            return result("ChangeAvailability", status="Scheduled")
        self.soon(self.status("Unavailable" if type == "Inoperative" else "Available"))
        return result("ChangeAvailability", status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key=None, **_):
        names = key or list(self.config)
        known = [{"key": k, "readonly": self.config[k][1], "value": self.config[k][0]} for k in names if k in self.config]
        unknown = [k for k in names if k not in self.config]
        return result("GetConfiguration", configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key, value, **_):
        if key not in self.config:
            return result("ChangeConfiguration", status="NotSupported")
        if self.config[key][1]:
            return result("ChangeConfiguration", status="Rejected")
        self.config[key][0] = value
        return result("ChangeConfiguration", status="RebootRequired" if key == "WebSocketPingInterval" else "Accepted")

    @on(Action.trigger_message)
    def on_trigger(self, requested_message, connector_id=None, **_):
        if requested_message == "StatusNotification":
            self.soon(self.status("Charging" if self.transaction is not None else "Available"))
            return result("TriggerMessage", status="Accepted")
        if requested_message == "Heartbeat":
            self.soon(self.call(payload("Heartbeat")))
            return result("TriggerMessage", status="Accepted")
        return result("TriggerMessage", status="NotImplemented")

    @on(Action.clear_cache)
    def on_clear_cache(self, **_):
        return result("ClearCache", status="Accepted")

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag, connector_id=None, **_):
        if self.transaction is not None:
            return result("RemoteStartTransaction", status="Rejected")
        self.soon(self.begin(id_tag))
        return result("RemoteStartTransaction", status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id, **_):
        if transaction_id != self.transaction:
            return result("RemoteStopTransaction", status="Rejected")
        self.soon(self.finish())
        return result("RemoteStopTransaction", status="Accepted")


CSM = Csm(BASE, TOKEN, CLI, ID)
command, cli, api, port = CSM.command, CSM.cli, CSM.api, CSM.port


async def main():
    url = BASE.replace("http://", "ws://") + f"/ocpp/{ID}"
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6", ws.subprotocol
        cp = Charger(ID, ws)
        listener = asyncio.create_task(cp.start())
        boot = await cp.call(payload("BootNotification", charge_point_model="PyModel", charge_point_vendor="ocpp-py"))
        assert boot.status == RegistrationStatus.accepted, boot
        assert boot.interval > 0, boot
        print(f"BootNotification: {boot.status}, interval {boot.interval} s, csm's time {boot.current_time}")
        await cp.call(payload("Heartbeat"))
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Available"))
        await until("port 1 free", lambda: (port(1) or {}).get("status") == "free")
        started = await cp.call(payload("StartTransaction", connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp=now()))
        assert started.id_tag_info["status"] == "Accepted", started
        print(f"StartTransaction: transaction {started.transaction_id}")
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Charging"))
        await cp.call(payload(
            "MeterValues", connector_id=1, transaction_id=started.transaction_id,
            meter_value=[{"timestamp": now(), "sampled_value": [
                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "3500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "231.0", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                {"value": "229.0", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
                {"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "16", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            ]}],
        ))
        charging = await until("port 1 charging with its meter values",
                               lambda: (p := port(1)) and p["status"] == "occupied" and p["power"] and p)
        assert abs(charging["power"] - 7400) < 1e-6, charging
        assert abs(charging["energy_kwh"] - 2.5) < 1e-6, charging
        assert abs(charging["voltage"] - 230.0) < 1e-6 and abs(charging["current"] - 32.0) < 1e-6, charging
        print(f"csm shows port 1 {charging['status']} ({charging['raw_code']}): {charging['power']:.0f} W, "
              f"{charging['voltage']:.1f} V, {charging['current']:.1f} A, {charging['energy_kwh']:.2f} kWh this session")
        cp, listener = await replace_mid_session(url, ws, listener)
        stopped = await cp.call(payload("StopTransaction", meter_stop=3500, timestamp=now(), transaction_id=started.transaction_id))
        assert stopped.id_tag_info["status"] == "Accepted", stopped
        await cp.call(payload("StatusNotification", connector_id=1, error_code="NoError", status="Available"))
        await until("port 1 free again", lambda: (port(1) or {}).get("status") == "free")
        events = await until("the status changes in csm's history", lambda: (
            e := api(f"/api/stations/{ID}/events?port=1")["events"]) and len(e) >= 3 and e)
        changes = [(e["old"], e["new"]) for e in reversed(events)]
        assert changes[-2:] == [("free", "occupied"), ("occupied", "free")], changes
        sessions = await until("the session in csm's history", lambda: (
            s := api(f"/api/stations/{ID}/sessions?port=1")["sessions"]) and s[0].get("ended_at") and s)
        print(f"csm recorded {changes} and a session of {sessions[0]['duration_minutes']} min")
        await operate(cp)
        listener.cancel()
        await cp._connection.close()
    gone = await until("csm to show the charger offline once its socket closed", lambda: (
        s := api(f"/api/stations/{ID}")) and s["last_error"]
        and all(p["status"] == "offline" for p in s["ports"]) and s)
    assert gone["stale"] is True, gone
    print(f"after the socket closed: ports {[p['status'] for p in gone['ports']]}, stale, "
          f"\"{gone['last_error']}\"")
    registry = api("/api/ocpp/charge-points?all=true")["charge_points"]
    me = next(c for c in registry if c["station_id"] == ID)
    assert (me["connection"], me["vendor"], me["model"]) == ("disconnected", "ocpp-py", "PyModel"), me
    print(f"the registry: {me['connection']}, {me['vendor']} {me['model']}, last {me['last_action']}")
    print("python ocpp charger: ok")


async def replace_mid_session(url, old, old_listener):
    """The charger's link drops mid-session and it comes back on a new socket before its old one
    closed (as after a modem's reconnect): csm hands the charger to the new socket, closes the old,
    and the session goes on with no offline in between. Returns the charger on the new socket."""
    ws = await websockets.connect(url, subprotocols=["ocpp1.6"])
    cp = Charger(ID, ws)
    listener = asyncio.create_task(cp.start())
    await cp.call(payload("Heartbeat"))
    try:
        await asyncio.wait_for(old.wait_closed(), 5)
    except asyncio.TimeoutError:
        raise SystemExit("FAIL: csm did not close the replaced socket within 5 s")
    old_listener.cancel()
    await asyncio.gather(old_listener, return_exceptions=True)
    assert (port(1) or {}).get("status") == "occupied", port(1)
    log = api(f"/api/ocpp/charge-points/{ID}/messages", TOKEN)["messages"]
    assert any(m["direction"] == "note" and "replacing connection" in m["frame"] for m in log), log[-4:]
    tail = await asyncio.get_running_loop().run_in_executor(None, cli, "messages", ID, "--limit", "5")
    print("replaced mid-session: csm closed the old socket, port 1 still charging; its message log:\n"
          + "\n".join("  " + line for line in tail.splitlines()))
    return cp, listener


async def operate(cp):
    """Each operator's command, as an operator sends it, and the charger's answer through csm."""
    print("operators' commands (csm's API -> the charger -> its answer):")
    loop = asyncio.get_running_loop()

    async def send(body, expect=200):
        return await loop.run_in_executor(None, command, body, expect)

    assert (await send({"command": "Reset", "type": "Soft"}))["status"] == "Accepted"
    assert (await send({"command": "UnlockConnector", "connector": 1}))["status"] == "Unlocked"
    refused = await send({"command": "UnlockConnector", "connector": 2}, 400)
    assert "reported connectors 1 only" in refused["error"], refused
    read = await send({"command": "GetConfiguration", "keys": ["HeartbeatInterval", "NoSuchKey"]})
    assert read["configuration"] == [{"key": "HeartbeatInterval", "value": "300", "readonly": False}], read
    assert read["unknown_keys"] == ["NoSuchKey"], read
    table = await loop.run_in_executor(None, cli, "command", ID, "get-configuration")
    assert "NumberOfConnectors" in table and "SupportedFeatureProfiles" in table, table
    print("  csm-cli ocpp command PY-CP1 get-configuration:\n" + "\n".join("    " + l for l in table.splitlines()))
    assert (await send({"command": "ChangeConfiguration", "key": "HeartbeatInterval", "value": "120"}))["status"] == "Accepted"
    assert cp.config["HeartbeatInterval"][0] == "120"
    assert (await send({"command": "ChangeConfiguration", "key": "WebSocketPingInterval", "value": "30"}))["status"] == "RebootRequired"
    assert "read-only" in (await send({"command": "ChangeConfiguration", "key": "NumberOfConnectors", "value": "2"}, 400))["error"]
    assert "no such configuration key" in (await send({"command": "ChangeConfiguration", "key": "VendorKey", "value": "1"}, 400))["error"]
    assert "takes a whole number" in (await send({"command": "ChangeConfiguration", "key": "HeartbeatInterval", "value": "often"}, 400))["error"]
    assert (await send({"command": "TriggerMessage", "message": "StatusNotification", "connector": 1}))["status"] == "Accepted"
    assert (await send({"command": "TriggerMessage", "message": "DiagnosticsStatusNotification"}))["status"] == "NotImplemented"
    assert (await send({"command": "ClearCache"}))["status"] == "Accepted"

    # An operator starts a session for a rider, then frees the port.
    assert (await send({"command": "RemoteStartTransaction", "id_tag": "OPERATOR-7", "connector": 1}))["status"] == "Accepted"
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
    for action in ("Reset", "GetConfiguration", "ChangeConfiguration", "RemoteStopTransaction", "ChangeAvailability"):
        assert ("out", action) in actions and ("in", action) in actions, (action, sorted(actions))
    text = json.dumps(log)
    assert "OPERATOR-7" not in text and "TAG-1" not in text, "an id tag in full in the message log"
    tail = await loop.run_in_executor(None, cli, "messages", ID, "--limit", "4")
    print("  csm-cli ocpp messages PY-CP1 --limit 4:\n" + "\n".join("    " + l for l in tail.splitlines()))


asyncio.run(main())
