#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine or a Kubernetes cluster (none runs on
the CI machine): the compose file parses and wires csm to MySQL and Redis with health checks,
its cluster profile runs replicas behind nginx with WebSocket upgrade and no stickiness, the
Kubernetes manifests fit together (selectors, ports, probes the server serves, a grace period
that covers the drain), and the Dockerfile builds the binaries this repository has."""
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

# The cluster profile: identical replicas on the same database and Redis, nginx in front with
# WebSocket upgrade and no stickiness.
replica = services.get("csm-replica", {})
nginx = services.get("nginx", {})
if "cluster" not in replica.get("profiles", []) or "cluster" not in nginx.get("profiles", []):
    problems.append("docker-compose.yml: csm-replica and nginx must be in the cluster profile")
if (replica.get("deploy", {}).get("replicas") or 0) < 2:
    problems.append("docker-compose.yml: csm-replica must run at least 2 replicas")
replica_env = replica.get("environment", {})
for key in ("CSM_DATABASE_URL", "CSM_REDIS_URL"):
    if replica_env.get(key) != env.get(key):
        problems.append(f"docker-compose.yml: csm-replica's {key} must be csm's (one database, one Redis)")
if "CSM_INSTANCE_ID" in replica_env:
    problems.append("docker-compose.yml: replicas must not share a CSM_INSTANCE_ID")
for key in replica_env:
    if key.startswith("CSM_") and key not in known:
        problems.append(f"docker-compose.yml: {key} is not a setting documented in .env.example")
mounts = [v.split(":")[0] for v in nginx.get("volumes", [])]
if not mounts:
    problems.append("docker-compose.yml: nginx mounts no configuration")
for mount in mounts:
    conf_path = root / mount
    if not conf_path.exists():
        problems.append(f"docker-compose.yml: nginx mounts {mount}, which does not exist")
        continue
    conf = conf_path.read_text()
    if "server csm-replica:5000" not in conf:
        problems.append(f"{mount}: the upstream must be csm-replica:5000 (every replica)")
    for needed in ("proxy_set_header Upgrade $http_upgrade", "proxy_buffering off"):
        if needed not in conf:
            problems.append(f"{mount}: missing `{needed}` (WebSockets and the event stream)")
    for sticky in ("ip_hash", "sticky", "hash $"):
        if sticky in conf:
            problems.append(f"{mount}: `{sticky}` makes clients sticky; csm needs none")

# Kubernetes: the manifests fit together and fit the server.
kube = root / "deploy" / "kubernetes"
docs = {}
for path in sorted(kube.glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            docs.setdefault(doc.get("kind"), []).append((path.name, doc))
routes = (root / "csm-server" / "src" / "api" / "mod.rs").read_text()
listed = set(docs.get("Kustomization", [(None, {})])[0][1].get("resources", []))
for path in sorted(kube.glob("*.yaml")):
    if path.name != "kustomization.yaml" and path.name not in listed:
        problems.append(f"deploy/kubernetes/kustomization.yaml does not list {path.name}")
for kind in ("Deployment", "Service", "Ingress", "PodDisruptionBudget"):
    if len(docs.get(kind, [])) != 1:
        problems.append(f"deploy/kubernetes: expected one {kind}, found {len(docs.get(kind, []))}")
if not problems:
    deployment = docs["Deployment"][0][1]
    service = docs["Service"][0][1]
    ingress = docs["Ingress"][0][1]
    pdb = docs["PodDisruptionBudget"][0][1]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    if (spec.get("replicas") or 0) < 2:
        problems.append("deployment.yaml: run at least 2 replicas")
    if spec["selector"]["matchLabels"].items() - labels.items():
        problems.append("deployment.yaml: the selector does not match the pod's labels")
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    kenv = {e["name"]: e for e in container.get("env", [])}
    for key in kenv:
        if key.startswith("CSM_") and key not in known:
            problems.append(f"deployment.yaml: {key} is not a setting documented in .env.example")
    bind_port = int(str(kenv.get("CSM_BIND", {}).get("value", ":5000")).rsplit(":", 1)[1])
    if bind_port not in ports.values():
        problems.append(f"deployment.yaml: csm listens on {bind_port}, which no container port names")
    if kenv.get("CSM_INSTANCE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        problems.append("deployment.yaml: CSM_INSTANCE_ID should be the pod's name")
    for key in ("CSM_DATABASE_URL", "CSM_REDIS_URL"):
        if "secretKeyRef" not in kenv.get(key, {}).get("valueFrom", {}):
            problems.append(f"deployment.yaml: {key} must come from a secret")
    for probe in ("readinessProbe", "livenessProbe"):
        path = container.get(probe, {}).get("httpGet", {}).get("path")
        if not path or f'.route("{path}"' not in routes:
            problems.append(f"deployment.yaml: the {probe} asks {path}, which the server does not serve")
        elif container[probe]["httpGet"].get("port") not in ports and container[probe]["httpGet"].get("port") not in ports.values():
            problems.append(f"deployment.yaml: the {probe} asks a port the container does not have")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    drain = int(re.search(r"const DRAIN: Duration = Duration::from_secs\((\d+)\)",
                          (root / "csm-server" / "src" / "serve.rs").read_text()).group(1))
    waited = int(pre_stop[-1]) if pre_stop and pre_stop[0] == "sleep" else 0
    if not waited:
        problems.append("deployment.yaml: a preStop sleep lets the load balancer stop sending first")
    if pod.get("terminationGracePeriodSeconds", 30) < waited + drain + 5:
        problems.append(f"deployment.yaml: the grace period must cover preStop ({waited} s), csm's drain ({drain} s) and the handover")
    if service["spec"]["selector"].items() - labels.items():
        problems.append("service.yaml: the selector matches no pod of the deployment")
    target = service["spec"]["ports"][0]["targetPort"]
    if target not in ports and target not in ports.values():
        problems.append(f"service.yaml: targetPort {target} is not a container port")
    if service["spec"].get("sessionAffinity", "None") != "None":
        problems.append("service.yaml: csm needs no session affinity")
    annotations = ingress["metadata"].get("annotations", {})
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        if int(annotations.get(f"nginx.ingress.kubernetes.io/{key}", "60")) < 600:
            problems.append(f"ingress.yaml: {key} must hold WebSockets and event streams open (≥ 600 s)")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            if backend["name"] != service["metadata"]["name"]:
                problems.append(f"ingress.yaml: backend {backend['name']} is not the service")
            if backend["port"].get("name") not in [p.get("name") for p in service["spec"]["ports"]]:
                problems.append("ingress.yaml: the backend port is not a port of the service")
    if pdb["spec"]["selector"]["matchLabels"].items() - labels.items():
        problems.append("pdb.yaml: the selector matches no pod of the deployment")
    if "maxUnavailable" not in pdb["spec"] and "minAvailable" not in pdb["spec"]:
        problems.append("pdb.yaml: say how many replicas may be down")

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
print("deployment files check out: compose wires csm to mysql and redis with health checks, and its "
      "cluster profile runs replicas behind nginx; the Kubernetes manifests fit together and fit the "
      "server; Dockerfile is multi-stage")
