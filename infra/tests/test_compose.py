"""Checks of the container deployment that need no Docker engine.

compose.yaml, the three Dockerfiles, .dockerignore, the Prometheus configuration and alert
rules and the Caddyfile are read as files and checked against each other and against what the
services really read: each Rust binary prints its environment variables with `config-keys`
(found in $CRUXLOG_BIN_DIR, default <repo>/target/debug; those checks skip when a binary is
missing). Optional checks run only when their tool is already here: the Compose JSON schema
(from an installed package or $COMPOSE_SPEC_SCHEMA, never downloaded), `promtool` and `caddy`.

Run: python -m pytest infra/tests -q
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip(
    "yaml", reason="PyYAML is needed to read compose.yaml (pip install pyyaml)"
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
PROMETHEUS_DIR = REPO / "infra" / "prometheus"
CADDYFILE = REPO / "infra" / "caddy" / "Caddyfile"

RUST_SERVICES = ("command-api", "projectors", "analyzers")
ALL_SERVICES = ("kafka", "postgres", *RUST_SERVICES, "prometheus", "caddy")
ADMIN_PORTS = {"command-api": 9180, "projectors": 9181, "analyzers": 9182}
API_PORT = 8080

# Read by the runtime crate outside the typed configuration (so absent from config-keys): the
# key, and the source file that must still mention it.
EXTRA_SERVICE_KEYS = {"CRUXLOG_LOG_FORMAT": REPO / "runtime" / "src" / "telemetry.rs"}
# Read by the Python package in the analyzers image (cruxlog_vision), not by the Rust binary (so
# absent from its config-keys): the key, and the module that must still mention it.
PYTHON_KEYS = {
    "CRUXLOG_SCHEMAS_DIR": REPO / "analyzers" / "python" / "src" / "cruxlog_vision" / "events.py"
}
# Compose variables a user must set (no default in compose.yaml).
REQUIRED_VARIABLES = {"CRUXLOG_JWT_SECRET", "CRUXLOG_EMAIL_INDEX_KEY"}

# The full set of broker properties a single combined KRaft node needs when configured through
# the apache/kafka image's KAFKA_* variables (any one of them drops the image's defaults).
KAFKA_REQUIRED = {
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_INTER_BROKER_LISTENER_NAME",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE",
}
# Broker properties the compose file may set: a misspelt variable would be rendered into
# server.properties as an unknown property and silently ignored by the broker.
KAFKA_KNOWN_PROPERTIES = {
    "node.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.listener.names",
    "inter.broker.listener.name",
    "log.dirs",
    "num.partitions",
    "default.replication.factor",
    "min.insync.replicas",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "auto.create.topics.enable",
    "group.initial.rebalance.delay.ms",
    "log.retention.hours",
    "delete.topic.enable",
}
# Variables the apache/kafka image consumes itself instead of rendering them as properties.
KAFKA_IMAGE_VARIABLES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_JMX_OPTS"}

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --------------------------------------------------------------------------------------------
# helpers


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def interpolate(value: str) -> str:
    """Resolves `${VAR:-default}` to its default and `${VAR:?msg}`/`${VAR}` to a placeholder."""

    def resolve(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if operator in (":-", "-"):
            return argument
        return f"<{name}>"

    return INTERPOLATION.sub(resolve, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping of strings (list form accepted)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def port_of(addr: str) -> int:
    """The port of `host:port` (the host may be empty, as in Kafka's `PLAINTEXT://:9092`)."""
    _, separator, port = addr.rpartition(":")
    assert separator, f"{addr!r} names no port"
    assert port.isdigit(), f"{addr!r} names no port"
    return int(port)


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(part) for part in test[1:])
    return str(test or "")


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test != ["NONE"]


def binary(service: str) -> Path:
    bin_dir = Path(os.environ.get("CRUXLOG_BIN_DIR", REPO / "target" / "debug"))
    return bin_dir / f"cruxlog-{service}"


_KEYS_CACHE: dict[str, set[str]] = {}


def config_keys(service: str) -> set[str]:
    """The variables `cruxlog-<service> config-keys` prints; skips if the binary is missing."""
    if service not in _KEYS_CACHE:
        path = binary(service)
        if not path.is_file() or not os.access(path, os.X_OK):
            pytest.skip(
                f"{path} not found: build the services first (cargo build --workspace) "
                "or point CRUXLOG_BIN_DIR at their binaries"
            )
        out = subprocess.run(
            [str(path), "config-keys"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        keys = {line.strip() for line in out.splitlines() if line.strip()}
        assert keys, f"{path} config-keys printed nothing"
        _KEYS_CACHE[service] = keys
    return _KEYS_CACHE[service]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
        current = ""
    assert not current, f"{path}: dangling line continuation"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def dockerignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(line.rstrip("/"))
    return patterns


def is_docker_ignored(relative: str, patterns: list[str]) -> bool:
    """Approximates .dockerignore matching (enough for the patterns this repo uses)."""
    relative = relative.strip("/")
    parts = relative.split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatchcase(part, tail) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates)
        if hit:
            ignored = not negate
    return ignored


def scrape_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for job in config.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            targets.setdefault(job["job_name"], []).extend(static.get("targets") or [])
    return targets


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "compose.yaml has no services mapping"
    return found


# --------------------------------------------------------------------------------------------
# compose.yaml: structure


def test_compose_parses_without_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose spec dropped the top-level `version:` key"


def test_all_services_exist(services: dict[str, Any]) -> None:
    missing = [name for name in ALL_SERVICES if name not in services]
    assert not missing, f"services missing from compose.yaml: {missing}"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name}: volume {source!r} is not declared"
    for name in ("kafka", "postgres"):
        named = [
            v for v in services[name].get("volumes") or [] if not str(v).startswith((".", "/"))
        ]
        assert named, f"{name} keeps its data in no named volume"


def test_bind_mount_sources_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: bind-mount source {source} is missing"


def test_interpolated_variables_have_defaults_or_are_documented(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    names = set()
    for match in INTERPOLATION.finditer(text):
        name, operator = match.group(1), match.group(2)
        names.add(name)
        if name in REQUIRED_VARIABLES:
            assert operator in (":?", "?"), f"${{{name}}} must fail loudly when unset (:?)"
        else:
            assert operator in (":-", "-"), f"${{{name}}} needs a default or REQUIRED_VARIABLES"
    undocumented = sorted(name for name in names if name not in header)
    assert not undocumented, f"compose.yaml's header does not describe {undocumented}"
    assert names >= REQUIRED_VARIABLES


# --------------------------------------------------------------------------------------------
# the Rust services' environment


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_service_sets_only_variables_it_reads(name: str, services: dict[str, Any]) -> None:
    keys = config_keys(name)
    env = environment(services[name])
    for key, source in EXTRA_SERVICE_KEYS.items():
        assert key in source.read_text(encoding="utf-8"), f"{source} no longer reads {key}"
    unknown = sorted(
        key
        for key in env
        if key.startswith("CRUXLOG_") and key not in keys and key not in EXTRA_SERVICE_KEYS
    )
    assert not unknown, f"{name} sets variables cruxlog-{name} does not read: {unknown}"


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_service_sets_the_required_variables(name: str, services: dict[str, Any]) -> None:
    keys = config_keys(name)
    env = environment(services[name])
    required = {
        "CRUXLOG_KAFKA__BROKERS",
        "CRUXLOG_DATABASE__URL",
        "CRUXLOG_HTTP__ADDR",
        "CRUXLOG_ADMIN__ADDR",
    } & keys
    assert "CRUXLOG_KAFKA__BROKERS" in required
    assert "CRUXLOG_ADMIN__ADDR" in required
    missing = sorted(required - set(env))
    assert not missing, f"{name} does not set {missing}"
    empty = sorted(key for key in required if not env[key].strip())
    assert not empty, f"{name} sets {empty} to nothing"


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_dockerfile_env_sets_only_variables_the_service_reads(name: str) -> None:
    keys = config_keys(name)
    python_keys = PYTHON_KEYS if name == "analyzers" else {}
    for key, source in python_keys.items():
        assert key in source.read_text(encoding="utf-8"), f"{source} no longer reads {key}"
    for keyword, args in dockerfile_instructions(REPO / name / "Dockerfile"):
        if keyword != "ENV":
            continue
        for key in re.findall(r"(?:^|\s)(CRUXLOG_[A-Z0-9_]+)=", args):
            known = key in keys or key in EXTRA_SERVICE_KEYS or key in python_keys
            assert known, f"{name}/Dockerfile sets {key}"


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_addresses_bind_all_interfaces_on_the_expected_ports(
    name: str, services: dict[str, Any]
) -> None:
    env = environment(services[name])
    addrs = {key: value for key, value in env.items() if key.endswith("__ADDR")}
    assert addrs, f"{name} sets no address"
    for key, value in addrs.items():
        host = value.rpartition(":")[0]
        assert host == "0.0.0.0", f"{name}: {key}={value} is not reachable from other containers"
    assert port_of(env["CRUXLOG_ADMIN__ADDR"]) == ADMIN_PORTS[name]
    if "CRUXLOG_HTTP__ADDR" in env:
        assert port_of(env["CRUXLOG_HTTP__ADDR"]) == API_PORT


def test_kafka_brokers_point_at_the_advertised_listener(services: dict[str, Any]) -> None:
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    endpoints = {item.split("://", 1)[1] for item in advertised.split(",")}
    for name in RUST_SERVICES:
        brokers = environment(services[name])["CRUXLOG_KAFKA__BROKERS"]
        for broker in brokers.split(","):
            assert broker in endpoints, f"{name}: broker {broker} is not advertised ({advertised})"
            assert broker.split(":")[0] in services, f"{name}: {broker} is not a compose service"


def test_database_urls_match_the_postgres_service(services: dict[str, Any]) -> None:
    pg = environment(services["postgres"])
    checked = 0
    for name in RUST_SERVICES:
        raw = environment(services[name]).get("CRUXLOG_DATABASE__URL")
        if raw is None:
            continue
        checked += 1
        url = urlsplit(interpolate(raw))
        assert url.scheme in ("postgres", "postgresql"), f"{name}: {raw}"
        assert url.hostname == "postgres", f"{name}: the database host is not the postgres service"
        assert (url.port or 5432) == 5432
        assert url.path.lstrip("/") == pg.get("POSTGRES_DB", pg.get("POSTGRES_USER", "postgres"))
        assert url.username == pg.get("POSTGRES_USER", "postgres")
        assert url.password == interpolate(pg["POSTGRES_PASSWORD"]), f"{name}: password differs"
        depends = services[name].get("depends_on") or {}
        assert "postgres" in depends, f"{name} uses PostgreSQL but does not depend on it"
    assert checked >= 2, "command-api and projectors both need CRUXLOG_DATABASE__URL"


def test_postgres_password_comes_from_a_variable_with_a_default(services: dict[str, Any]) -> None:
    password = environment(services["postgres"])["POSTGRES_PASSWORD"]
    match = INTERPOLATION.fullmatch(password)
    assert match, "POSTGRES_PASSWORD must come from a compose variable"
    assert match.group(2) == ":-", "POSTGRES_PASSWORD needs a default for local use"
    assert match.group(3), "POSTGRES_PASSWORD needs a default for local use"


def test_jwt_secret_is_required_and_dev_secret_is_not_allowed(services: dict[str, Any]) -> None:
    env = environment(services["command-api"])
    assert env["CRUXLOG_AUTH__JWT_SECRET"].startswith("${CRUXLOG_JWT_SECRET:?")
    assert env.get("CRUXLOG_AUTH__ALLOW_DEV_SECRET", "false").lower() in ("false", "0", "")


def test_analyzers_run_workers_from_the_image_venv(services: dict[str, Any]) -> None:
    env = environment(services["analyzers"])
    assert env["CRUXLOG_WORKER__PYTHON"] == "/opt/venv/bin/python"
    text = (REPO / "analyzers" / "Dockerfile").read_text(encoding="utf-8")
    assert "python3 -m venv /opt/venv" in text


def test_api_port_is_published_and_proxied(services: dict[str, Any]) -> None:
    api = services["command-api"]
    published = [str(port) for port in api.get("ports") or []]
    assert any(port.endswith(f":{API_PORT}") for port in published), published
    caddy_ports = [interpolate(str(port)) for port in services["caddy"].get("ports") or []]
    assert any(port.split("/")[0].endswith(":443") for port in caddy_ports), caddy_ports
    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    assert f"reverse_proxy command-api:{API_PORT}" in caddyfile
    assert re.search(r"^\s*tls internal\s*$", caddyfile, re.MULTILINE)
    mounts = [str(volume) for volume in services["caddy"].get("volumes") or []]
    assert "./infra/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in mounts
    health_port = re.search(r"health_port\s+(\d+)", caddyfile)
    if health_port:
        assert int(health_port.group(1)) == ADMIN_PORTS["command-api"]


# --------------------------------------------------------------------------------------------
# healthchecks and depends_on


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_healthcheck_probes_the_admin_port(name: str, services: dict[str, Any]) -> None:
    command = healthcheck_command(services[name])
    match = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)/healthz", command)
    assert match, f"{name}: the healthcheck does not probe /healthz: {command!r}"
    assert int(match.group(1)) == port_of(environment(services[name])["CRUXLOG_ADMIN__ADDR"])
    tool = command.split()[0]
    final = final_stage(dockerfile_instructions(REPO / name / "Dockerfile"))
    installs = " ".join(args for keyword, args in final if keyword == "RUN")
    assert re.search(rf"\b{re.escape(tool)}\b", installs), f"{name}: the image lacks {tool}"


def test_kafka_and_postgres_healthchecks(services: dict[str, Any]) -> None:
    kafka = healthcheck_command(services["kafka"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in kafka
    bootstrap = re.search(r"--bootstrap-server\s+(\S+)", kafka)
    assert bootstrap, kafka
    listeners = environment(services["kafka"])["KAFKA_LISTENERS"]
    plaintext = next(item for item in listeners.split(",") if item.startswith("PLAINTEXT://"))
    assert port_of(bootstrap.group(1)) == port_of(plaintext.split("://", 1)[1])
    assert "pg_isready" in healthcheck_command(services["postgres"])


def test_depends_on_waits_for_healthy_services(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, options in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = (options or {}).get("condition", "service_started")
            if name in RUST_SERVICES or name == "caddy":
                assert condition == "service_healthy", f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert has_healthcheck(services[target]), f"{name} waits on {target}'s health"
    for name in RUST_SERVICES:
        assert "kafka" in (services[name].get("depends_on") or {}), f"{name} must wait for kafka"


def test_depends_on_has_no_cycle(services: dict[str, Any]) -> None:
    graph = {name: set(service.get("depends_on") or {}) for name, service in services.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            pytest.fail(f"depends_on cycle: {' -> '.join([*path, node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for target in graph.get(node, ()):
            visit(target, [*path, node])
        state[node] = 2

    for node in graph:
        visit(node, [])


# --------------------------------------------------------------------------------------------
# Kafka


def test_kafka_image_is_4_1(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"apache/kafka:4\.1\.\d+", services["kafka"]["image"])


def test_kafka_has_the_full_kraft_variable_set(services: dict[str, Any]) -> None:
    env = environment(services["kafka"])
    missing = sorted(KAFKA_REQUIRED - set(env))
    assert not missing, f"kafka lacks {missing}"
    assert env.get("CLUSTER_ID"), "KRaft mode in the apache/kafka image needs CLUSTER_ID"

    node_id = env["KAFKA_NODE_ID"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners.get("PLAINTEXT") == ":9092", listeners
    assert listeners.get("CONTROLLER") == ":9093", listeners
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    protocol_map = dict(
        item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocol_map), "every listener needs a security protocol"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", f"{key} must be 1 on a single broker"
    if "KAFKA_MIN_INSYNC_REPLICAS" in env:
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_variables_name_real_properties(services: dict[str, Any]) -> None:
    def property_name(variable: str) -> str:
        # The image's rule: _ -> ., __ -> _, ___ -> -, lower case.
        key = variable.removeprefix("KAFKA_")
        key = re.sub(r"(?<!_)_(?!_)", ".", key)
        return key.replace("___", "-").replace("__", "_").lower()

    for variable in environment(services["kafka"]):
        if not variable.startswith("KAFKA_") or variable in KAFKA_IMAGE_VARIABLES:
            continue
        prop = property_name(variable)
        assert prop in KAFKA_KNOWN_PROPERTIES, f"{variable} renders unknown property {prop}"


def test_kafka_data_lives_in_a_volume(services: dict[str, Any]) -> None:
    log_dirs = environment(services["kafka"])["KAFKA_LOG_DIRS"]
    targets = [str(volume).split(":")[1] for volume in services["kafka"].get("volumes") or []]
    assert log_dirs in targets, f"KAFKA_LOG_DIRS={log_dirs} is not on a volume ({targets})"


# --------------------------------------------------------------------------------------------
# Dockerfiles


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_build_points_at_an_existing_dockerfile(name: str, services: dict[str, Any]) -> None:
    build = services[name].get("build")
    assert isinstance(build, dict), f"{name}: build must name its context and dockerfile"
    assert build.get("context") == ".", f"{name}: the build context must be the repo root"
    dockerfile = REPO / build["context"] / build["dockerfile"]
    assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    assert build["dockerfile"] == f"{name}/Dockerfile"


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_dockerfile_copy_sources_exist_and_reach_the_context(name: str) -> None:
    patterns = dockerignore_patterns()
    copies = 0
    for keyword, args in dockerfile_instructions(REPO / name / "Dockerfile"):
        if keyword not in ("COPY", "ADD"):
            continue
        if "--from=" in args:
            continue
        words = [word for word in args.split() if not word.startswith("--")]
        if words and words[0].startswith("["):
            words = json.loads(" ".join(words))
        *sources, _destination = words
        for source in sources:
            copies += 1
            assert (REPO / source).exists(), f"{name}/Dockerfile copies missing {source}"
            if source not in (".", "./"):
                assert not is_docker_ignored(source, patterns), f"{source} is in .dockerignore"
    assert copies, f"{name}/Dockerfile copies nothing from the repository"


def test_dockerignore_keeps_the_build_inputs() -> None:
    patterns = dockerignore_patterns()
    for excluded in ("target", ".local", ".git", "analyzers/python/.venv"):
        assert is_docker_ignored(excluded, patterns), f".dockerignore lets {excluded} through"
    assert is_docker_ignored("analyzers/python/src/cruxlog_vision/__pycache__", patterns)
    needed = [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "schemas/avro",
        "projectors/migrations",
        "analyzers/python/pyproject.toml",
        "analyzers/python/src/cruxlog_vision",
    ]
    for crate in ("schemas", "runtime", *RUST_SERVICES):
        needed.extend([f"{crate}/Cargo.toml", f"{crate}/src"])
    for path in needed:
        assert (REPO / path).exists(), path
        assert not is_docker_ignored(path, patterns), f".dockerignore drops {path}"


@pytest.mark.parametrize("name", RUST_SERVICES)
def test_dockerfile_builds_the_service_into_a_slim_non_root_image(name: str) -> None:
    path = REPO / name / "Dockerfile"
    instructions = dockerfile_instructions(path)
    text = " ".join(f"{keyword} {args}" for keyword, args in instructions)
    assert f"cargo build --release --locked -p cruxlog-{name}" in text
    assert re.search(r"\bSQLX_OFFLINE=true\b", text)
    args = dict(
        item.split("=", 1) for keyword, item in instructions if keyword == "ARG" and "=" in item
    )
    toolchain = (REPO / "rust-toolchain.toml").read_text(encoding="utf-8")
    channel = re.search(r'channel\s*=\s*"([^"]+)"', toolchain)
    assert channel, "rust-toolchain.toml names no channel"
    assert args.get("RUST_VERSION") == channel.group(1), "builder and rust-toolchain.toml differ"
    froms = [item for keyword, item in instructions if keyword == "FROM"]
    assert froms[0].startswith("rust:${RUST_VERSION}-bookworm"), froms[0]
    final = final_stage(instructions)
    assert final[0][1].split()[0] == "debian:bookworm-slim"
    runs = " ".join(item for keyword, item in final if keyword == "RUN")
    assert "ca-certificates" in runs
    users = [item for keyword, item in final if keyword == "USER"]
    assert users, f"{name}: the runtime stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    exposed = {
        int(port.split("/")[0])
        for keyword, item in final
        if keyword == "EXPOSE"
        for port in item.split()
    }
    expected = {ADMIN_PORTS[name]} | ({API_PORT} if name == "command-api" else set())
    assert expected <= exposed, f"{name}: EXPOSE {sorted(exposed)}, expected {sorted(expected)}"


def test_analyzers_image_has_the_lean_vision_stack() -> None:
    text = " ".join(
        args for keyword, args in dockerfile_instructions(REPO / "analyzers" / "Dockerfile")
    )
    assert "pip install --no-deps mediapipe==0.10.14" in text
    for pin in ('"protobuf>=4.25.3,<5"', '"numpy<2"', '"opencv-python-headless==4.11.0.86"'):
        assert pin in text, pin
    for package in ("absl-py", "attrs", "flatbuffers", "matplotlib", "ffmpeg", "python3-venv"):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", text), package
    assert re.search(r"pip install (-c \S+ )?/src/analyzers/python(\s|$)", text)
    assert "[dev]" not in text, "the image installs no dev extra"


# --------------------------------------------------------------------------------------------
# Prometheus


@pytest.fixture(scope="module", params=["prometheus.yml", "prometheus.local.yml"])
def prometheus(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    path = PROMETHEUS_DIR / request.param
    config = load_yaml(path)
    assert isinstance(config, dict), f"{path} is not a mapping"
    return request.param, config


def test_prometheus_references_an_existing_rules_file(
    prometheus: tuple[str, dict[str, Any]],
) -> None:
    name, config = prometheus
    rule_files = config.get("rule_files") or []
    assert "alerts.yml" in rule_files, f"{name} does not load alerts.yml"
    for rule_file in rule_files:
        path = PROMETHEUS_DIR / rule_file
        assert path.is_file(), f"{name}: {rule_file} does not exist"
        assert isinstance(load_yaml(path).get("groups"), list), f"{rule_file} has no groups"


def test_prometheus_scrapes_every_admin_port(
    prometheus: tuple[str, dict[str, Any]], services: dict[str, Any]
) -> None:
    name, config = prometheus
    targets = scrape_targets(config)
    for service in RUST_SERVICES:
        port = port_of(environment(services[service])["CRUXLOG_ADMIN__ADDR"])
        host = service if name == "prometheus.yml" else "127.0.0.1"
        found = [target for jobs in targets.values() for target in jobs]
        assert f"{host}:{port}" in found, f"{name} does not scrape {host}:{port}"
        assert f"{host}:{port}" in targets.get(service, []), f"{name}: job name != {service}"


def test_compose_mounts_the_prometheus_files(services: dict[str, Any]) -> None:
    mounts = [str(volume) for volume in services["prometheus"].get("volumes") or []]
    assert "./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./infra/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_alert_rules_are_well_formed_and_name_real_metrics() -> None:
    rules = load_yaml(PROMETHEUS_DIR / "alerts.yml")
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for crate in ("runtime", *RUST_SERVICES)
        for path in (REPO / crate / "src").rglob("*.rs")
    )
    alerts = {}
    for group in rules["groups"]:
        assert group.get("name"), "a rule group without a name"
        for rule in group["rules"]:
            assert rule.get("alert"), rule
            assert rule.get("expr"), rule
            assert rule["alert"] not in alerts, f"duplicate alert {rule['alert']}"
            alerts[rule["alert"]] = rule["expr"]
            assert rule.get("labels", {}).get("severity") in ("critical", "warning", "info")
            assert rule.get("annotations", {}).get("summary"), f"{rule['alert']} has no summary"
            for metric in re.findall(r"\bcruxlog_[a-z0-9_]+", rule["expr"]):
                assert f'"{metric}"' in sources, f"{rule['alert']}: no service exports {metric}"
    expressions = " ".join(alerts.values())
    for metric in (
        "cruxlog_append_failures_total",
        "cruxlog_projector_batch_failures_total",
        "cruxlog_projector_dead_letters_total",
        "cruxlog_analyzer_workers_alive",
    ):
        assert metric in expressions, f"no alert on {metric}"
    assert re.search(r"\bup\b(\{[^}]*\})?\s*==\s*0", expressions), "no alert on a target being down"


# --------------------------------------------------------------------------------------------
# optional: tools that validate more deeply, used only when already installed


def compose_schema() -> Path | None:
    explicit = os.environ.get("COMPOSE_SPEC_SCHEMA")
    if explicit:
        return Path(explicit)
    # docker-compose 1.x (a Python package) ships the Compose spec's schema.
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "config" / "compose_spec.json"
        if candidate.is_file():
            return candidate
    return None


def test_compose_validates_against_the_compose_schema(compose: dict[str, Any]) -> None:
    schema_path = compose_schema()
    if schema_path is None:
        pytest.skip("no Compose JSON schema installed (set COMPOSE_SPEC_SCHEMA to a local copy)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors
    )


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_accepts_the_configuration(name: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_caddy_accepts_the_caddyfile() -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed")
    result = subprocess.run(
        [caddy, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile", "--validate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
