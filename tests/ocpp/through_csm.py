"""What both Python chargers (charger.py, OCPP 1.6J; charger201.py, OCPP 2.0.1) ask of csm while
they run: an operator's command through its API, csm-cli, a read of the API, and waiting for
csm to show something."""

import asyncio
import datetime
import json
import subprocess
import urllib.error
import urllib.request


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


async def until(what, check, seconds=10):
    for _ in range(seconds * 10):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise SystemExit(f"FAIL: {what} did not happen within {seconds} s")


class Csm:
    """csm at `base` (an admin `token`, the `cli` binary), as charger `charger` is checked there."""

    def __init__(self, base, token, cli, charger):
        self.base, self.token, self.cli_path, self.charger = base.rstrip("/"), token, cli, charger

    def command(self, body, expect=200):
        """Sends an operator's command through csm's API: the answer (or the refusal's reason)."""
        request = urllib.request.Request(
            f"{self.base}/api/ocpp/charge-points/{self.charger}/commands", data=json.dumps(body).encode(),
            method="POST", headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, answer = response.status, json.load(response)
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.load(error)
        shown = answer.get("status") or answer.get("error") or answer.get("configuration") or answer.get("variables")
        print(f"  {json.dumps(body)} -> {status} {shown}")
        if status != expect:
            raise SystemExit(f"FAIL: {body} answered {status} {answer}, expected {expect}")
        return answer

    def cli(self, *args):
        done = subprocess.run([self.cli_path, "ocpp", *args, "--server", self.base], capture_output=True, text=True,
                              timeout=30, env={"CSM_ADMIN_TOKEN": self.token, "PATH": "/usr/bin:/bin"})
        if done.returncode != 0:
            raise SystemExit(f"FAIL: csm-cli ocpp {' '.join(args)}: {done.stderr}")
        return done.stdout

    def api(self, path, token=None):
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def port(self, n):
        station = self.api(f"/api/stations/{self.charger}")
        return next((p for p in station["ports"] if p["port"] == n), None)
