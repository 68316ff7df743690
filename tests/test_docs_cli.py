"""docs/cli.md against the command line: every command has its section and every section a command;
every option a section names exists on that command; the natural roles it lists are the roles the
commands act in; ``gallery delete`` does what its section says; the identify expected-FPIR line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from faceledger.cli.main import app

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "cli.md").read_text()
GLOBAL = {"--store", "--policy", "--role", "--backend", "--actor", "--help", "-b"}
runner = CliRunner()


def commands() -> dict[str, click.Command]:
    """Every leaf command by its path ("gallery create")."""
    root = typer.main.get_command(app)
    out: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                out[f"{prefix}{name}"] = cmd
    walk(root, "")
    return out


def sections() -> dict[str, str]:
    parts = re.split(r"^## `faceledger ([a-z -]+)`\n", DOC, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_every_command_is_documented_and_every_section_is_a_command():
    assert set(sections()) == set(commands())


def test_every_option_a_section_names_exists_on_its_command():
    cmds = commands()
    for path, text in sections().items():
        names = {opt for p in cmds[path].params for opt in (*p.opts, *p.secondary_opts)}
        own = re.sub(r"`faceledger (?:--\w+ \S+ )*([a-z][^`]*)`",
                     lambda m, path=path: m.group(0) if m.group(1).startswith(path) else "", text)
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", own)) - GLOBAL
        assert named <= names, f"`faceledger {path}` documents {sorted(named - names)}, which it does not take"


def natural_roles() -> dict[str, str]:
    table = DOC.split("### Natural role of each command")[1].split("\n## ")[0]
    roles = {}
    for row in re.findall(r"^\| `([a-z]+)` \| (.+) \|$", table, re.M):
        for cmd in re.findall(r"`([a-z -]+)`", row[1]):
            roles[cmd] = row[0]
    return roles


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory owned by the user running the tests: they hold every role."""
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "data"))
    for name in ("FACELEDGER_STORE", "FACELEDGER_POLICY", "FACELEDGER_ACTOR", "FACELEDGER_ROLE", "FACELEDGER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def last_entry(tmp_path: Path) -> dict:
    out = tmp_path / f"ledger-{len(list(tmp_path.glob('ledger-*')))}.jsonl"
    assert runner.invoke(app, ["--role", "auditor", "ledger", "export", str(out)]).exit_code == 0
    return json.loads(out.read_text().splitlines()[-1])


def test_the_natural_roles_listed_are_the_roles_commands_act_in(fresh: Path):
    roles = natural_roles()
    assert set(roles) <= set(commands())
    # Each command run without --role by someone holding every role: the ledger names the role it acted in.
    runs = {"gallery create": ["gallery", "create", "staff"],
            "authorization list": ["authorization", "list"],
            "retention run": ["retention", "run", "--dry-run"],
            "ledger keygen": ["ledger", "keygen", str(fresh / "cp.key"), str(fresh / "cp.pub")],
            "key list": ["key", "list"],
            "consent record": ["consent", "record", "staff", "emp-1", "--purpose", "access_control",
                               "--notice-version", "v1", "--method", "signed_form"],
            "consent list": ["consent", "list", "staff"],
            "review list": ["review", "list"],
            "ledger verify": ["ledger", "verify"],
            "report usage": ["report", "usage", "--json"]}
    for command, argv in runs.items():
        r = runner.invoke(app, argv)
        assert r.exit_code == 0, f"{command}: {r.output}"
        entry = last_entry(fresh)
        if entry["operation"] != "ledger_export":       # (the listing commands are not ledgered)
            assert entry["role"] == roles[command], (command, entry)
    for listed in ("gallery list", "gallery show", "subject list"):     # not ledgered: it runs without --role
        argv = listed.split() + (["staff"] if listed != "gallery list" else [])
        assert runner.invoke(app, argv).exit_code == 0, listed


def test_gallery_delete_refuses_a_gallery_with_subjects_unless_erase_subjects(fresh: Path, testdata: Path):
    photo = testdata / "lfw" / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    assert runner.invoke(app, ["gallery", "create", "staff"]).exit_code == 0
    assert runner.invoke(app, ["consent", "record", "staff", "aaron", "--purpose", "access_control",
                               "--notice-version", "v1", "--method", "signed_form"]).exit_code == 0
    assert runner.invoke(app, ["enroll", "staff", "aaron", str(photo)]).exit_code == 0
    assert runner.invoke(app, ["gallery", "delete", "staff"]).exit_code == 8
    r = runner.invoke(app, ["gallery", "delete", "staff", "--erase-subjects"])
    assert r.exit_code == 0 and "1 subject(s) erased" in r.output
    entry = last_entry(fresh)
    assert entry["operation"] == "gallery_delete" and entry["result"]["subjects_erased"] == 1


def test_the_expected_fpir_line_reads_as_documented(fresh: Path, testdata: Path):
    shown = re.search(r"```\n(gallery of .+)\n```", DOC).group(1)
    pattern = r"[\d.,]+".join(map(re.escape, re.split(r"\d[\d.,]*", shown)))     # any numbers, same words
    policy = fresh / "policy.toml"
    policy.write_text('[purposes]\nallowed = ["access_control", "investigation"]\n[identification]\nenabled = true\n')
    lfw = testdata / "lfw" / "images"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACELEDGER_POLICY", str(policy))
        line = _identify_once(fresh, lfw)
    assert re.fullmatch(pattern, line), (pattern, line)


def _identify_once(tmp: Path, lfw: Path) -> str:
    """With identification enabled the data directory's owner holds only admin: keys for an enroller and an
    investigator (as the docs say), a gallery, an authorization, one enrollment and one search."""
    def as_key(token: str | None, *argv: str):
        with pytest.MonkeyPatch.context() as mp:
            if token:
                mp.setenv("FACELEDGER_API_KEY", token)
            r = runner.invoke(app, list(argv))
        assert r.exit_code == 0, (argv, r.output)
        return r.output

    def key(actor: str, role: str) -> str:
        return json.loads(as_key(None, "key", "create", actor, role, "--json"))["token"]

    carl, ines = key("carl", "enroller"), key("ines", "investigator")
    as_key(None, "gallery", "create", "staff")
    as_key(None, "authorization", "record", "--kind", "court_order", "--reference", "CASE-1", "--issuer", "Court",
           "--gallery", "staff", "--purpose", "investigation")
    as_key(carl, "consent", "record", "staff", "aaron", "--purpose", "access_control", "--notice-version", "v1",
           "--method", "signed_form")
    as_key(carl, "enroll", "staff", "aaron", str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"))
    out = as_key(ines, "identify", "staff", str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"),
                 "--purpose", "investigation")
    return next(line for line in out.splitlines() if line.startswith("gallery of"))
