#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine (none runs on the CI machine): the
compose file parses and wires csm to MySQL and Redis with health checks, and the Dockerfile
builds the binaries this repository has and copies what exists."""
import pathlib
import re
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
problems = []

compose = yaml.safe_load((root / "docker-compose.yml").read_text())
services = compose.get("services", {})
for name in ("mysql", "redis", "csm"):
    if name not in services:
        problems.append(f"docker-compose.yml: service {name} is missing")
    elif "healthcheck" not in services[name]:
        problems.append(f"docker-compose.yml: service {name} has no healthcheck")
csm = services.get("csm", {})
env = csm.get("environment", {})
if not str(env.get("CSM_DATABASE_URL", "")).startswith("mysql://"):
    problems.append("docker-compose.yml: csm must get a mysql:// CSM_DATABASE_URL")
if "@mysql:3306/" not in str(env.get("CSM_DATABASE_URL", "")):
    problems.append("docker-compose.yml: CSM_DATABASE_URL must point at the mysql service")
if env.get("CSM_REDIS_URL") != "redis://redis:6379":
    problems.append("docker-compose.yml: CSM_REDIS_URL must point at the redis service")
for dep in ("mysql", "redis"):
    if csm.get("depends_on", {}).get(dep, {}).get("condition") != "service_healthy":
        problems.append(f"docker-compose.yml: csm must wait for a healthy {dep}")
if not any("/var/lib/mysql" in v for v in services.get("mysql", {}).get("volumes", [])):
    problems.append("docker-compose.yml: MySQL needs a volume for /var/lib/mysql")
if "mysql-data" not in (compose.get("volumes") or {}):
    problems.append("docker-compose.yml: the mysql-data volume is not declared")
known = set(re.findall(r"^#?(CSM_[A-Z_]+)=", (root / ".env.example").read_text(), re.M))
for key in env:
    if key.startswith("CSM_") and key not in known:
        problems.append(f"docker-compose.yml: {key} is not a setting documented in .env.example")

dockerfile = (root / "Dockerfile").read_text()
if len(re.findall(r"^FROM ", dockerfile, re.M)) < 2:
    problems.append("Dockerfile: expected a multi-stage build")
for binary in re.findall(r"target/release/([a-z-]+)", dockerfile):
    if not (root / binary / "Cargo.toml").exists():
        problems.append(f"Dockerfile: copies {binary}, which is not a crate of the workspace")
for source in re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.M):
    if source != "." and not (root / source).exists():
        problems.append(f"Dockerfile: COPY {source}, which does not exist")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("deployment files check out: compose wires csm to mysql and redis with health checks; Dockerfile is multi-stage")
