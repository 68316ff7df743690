"""The container files: the Dockerfile and compose.yaml parse, the image runs ``faceledger serve``,
and the entry point turns ``FACELEDGER_*_FILE`` secrets into settings. (No image is built here.)"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a continuation line runs off the end of the Dockerfile"
    return out


def test_dockerfile_parses_and_the_image_runs_faceledger_serve():
    steps = dockerfile_instructions(REPO / "Dockerfile")
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD",
             "ARG", "LABEL"}
    assert {word for word, _ in steps} <= known and steps[0][0] == "FROM"
    last = {word: args for word, args in steps}                 # the final stage's ENTRYPOINT and CMD
    entry, cmd = json.loads(last["ENTRYPOINT"]), json.loads(last["CMD"])
    assert cmd[:2] == ["faceledger", "serve"] and "--host" in cmd and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    assert last["EXPOSE"] == port
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["faceledger"] == "faceledger.cli.main:main"          # the command CMD names exists
    copied = [shlex.split(args) for word, args in steps if word == "COPY"]
    assert any(c[-1] == entry[0] for c in copied), "the entry point script is copied into the image"
    for c in copied:
        if not c[0].startswith("--from"):
            assert all((REPO / src).exists() for src in c[:-1]), c
    assert any("'.[server,postgres]'" in args for word, args in steps if word == "RUN")
    assert last["USER"] != "root" and "FACELEDGER_DATA_DIR=/data" in last["ENV"]


def test_compose_runs_faceledger_on_postgres_with_volumes_and_secrets():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    db, app = services["db"], services["faceledger"]
    assert "pgvector" in db["image"]
    assert app["build"] == "." and app["depends_on"]["db"]["condition"] == "service_healthy"
    volumes = set(compose["volumes"])
    assert {v.split(":")[0] for v in db["volumes"] + app["volumes"]} == volumes
    assert any(v.endswith(":/data") for v in app["volumes"])            # the image's data directory
    secrets = compose["secrets"]
    for service in (db, app):
        for name in service["secrets"]:
            assert name in secrets
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"
    assert app["environment"]["FACELEDGER_STORE_FILE"] == "/run/secrets/store_url"
    assert not any("password" in str(v).lower() and "_FILE" not in k for k, v in app["environment"].items())
    assert "command" not in app and "entrypoint" not in app                 # the image's `faceledger serve`
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/secrets/" in ignored


def test_entrypoint_reads_file_secrets_into_settings_and_runs_the_command(tmp_path: Path):
    secret = tmp_path / "store_url"
    secret.write_text("postgresql://faceledger:s3cret@db:5432/faceledger")
    env = {"PATH": os.environ["PATH"], "FACELEDGER_STORE_FILE": str(secret), "FACELEDGER_PORT": "8000"}
    script = str(REPO / "deploy" / "entrypoint.sh")
    show = 'echo "$FACELEDGER_STORE|$FACELEDGER_PORT|${FACELEDGER_STORE_FILE-}"'
    out = subprocess.run(["sh", script, "sh", "-c", show], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "postgresql://faceledger:s3cret@db:5432/faceledger|8000|"
    env["FACELEDGER_STORE_FILE"] = str(tmp_path / "missing")
    bad = subprocess.run(["sh", script, "true"], env=env, capture_output=True, text=True)
    assert bad.returncode == 78 and "cannot be read" in bad.stderr


def test_make_run_takes_host_and_port(tmp_path: Path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for stamp in (".installed-run", ".installed-dev"):
        (venv / stamp).touch()
    (venv / "bin" / "python").touch()
    args = ["make", "-s", "-n", "-C", str(REPO), f"VENV={venv}", "run"]
    default = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert f"{venv}/bin/faceledger serve --host 127.0.0.1 --port 8000" in default
    chosen = subprocess.run([*args, "HOST=0.0.0.0", "PORT=9123"], capture_output=True, text=True, check=True).stdout
    assert f"{venv}/bin/faceledger serve --host 0.0.0.0 --port 9123" in chosen
