"""The README's quick starts, run as written: real photos from the test data stand in for the example
file names, a temporary data directory for ``/var/lib/faceledger``; each step must do what its comment
says. (The photos are read from the test data; the video and folders are made in tmp_path.)"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.fixture
def names(testdata: Path) -> dict[str, str]:
    """The README's example file names and the real photos that stand in for them."""
    lfw, groups = testdata / "lfw" / "images", testdata / "groups"
    return {"id_photo.jpg": str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"),
            "selfie.jpg": str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"),
            "camera.jpg": str(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0003.jpg"),
            "group.jpg": str(groups / "facenetpytorch_multiface.jpg"),
            "team.jpg": str(groups / "facenetpytorch_multiface.jpg")}


def substitute(code: str, names: dict[str, str]) -> str:
    for name, path in names.items():
        code = re.sub(rf"(?<![\w/.]){re.escape(name)}", path, code)
    return code


def test_python_quick_start_runs_as_written(names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first, second = blocks(section(README, "Python quick start"), "python")
    policy = tmp_path / "policy.toml"
    policy.write_text('[purposes]\nallowed = ["access_control"]\n')
    second = second.replace("sqlite:///var/lib/faceledger/faceledger.db", f"sqlite:///{tmp_path}/faceledger.db")
    second = second.replace('"policy.toml"', repr(str(policy)))
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "data"))
    scope: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(substitute(first, names), "README python 1", "exec"), scope)   # noqa: S102 - the README's code
    match, score, threshold, point, model = out.getvalue().split()
    assert match == "True" and float(score) >= float(threshold) and point == "fmr1e-3" and model
    assert len(scope["faces"]) == 6 and scope["t"].vector.shape == (128,)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(substitute(second, names), "README python 2", "exec"), {})  # noqa: S102
    assert out.getvalue().strip() == "True"            # the ledger verifies after enroll, verify and erase


def cli_steps(names: dict[str, str]) -> list[list[str]]:
    """argv of every command of the CLI quick start (what each comment says is checked after the run)."""
    (block,) = blocks(section(README, "CLI quick start"), "sh")
    steps = []
    for line in block.replace("\\\n", " ").splitlines():
        command = line.partition("#")[0]
        if command.strip():
            steps.append(shlex.split(substitute(command, names)))
    return steps


def make_video(path: Path, photo: str) -> None:
    import av
    import numpy as np
    from PIL import Image

    frame = np.asarray(Image.open(photo).convert("RGB").resize((640, 432)))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 432, "yuv420p"
        for i in range(6):
            shifted = np.roll(frame, 4 * i, axis=1)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(shifted), format="rgb24")))
        out.mux(stream.encode())


def test_cli_quick_start_runs_as_written(names, tmp_path: Path):
    make_video(tmp_path / "crowd.mp4", names["team.jpg"])
    (tmp_path / "archive" / "trip").mkdir(parents=True)
    for i, key in enumerate(("team.jpg", "id_photo.jpg")):
        (tmp_path / "archive" / "trip" / f"p{i}.jpg").write_bytes(Path(names[key]).read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO / "src"))
    outputs = {}
    for argv in cli_steps(names):
        assert argv[0] == "faceledger"
        run = subprocess.run([sys.executable, "-m", "faceledger.cli.main", *argv[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"{' '.join(argv)}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
        outputs[" ".join(argv)] = run.stdout
    assert (tmp_path / "team_faces.png").is_file()                          # --annotate team_faces.png
    said = lambda words: next(v for k, v in outputs.items() if words in k)  # noqa: E731
    assert "same person" in said("faceledger verify")                      # exit 0 same person
    assert "yunet-sface" in said("faceledger models")                      # backends, files, SHA-256, thresholds
    assert "2 template(s) added" not in said("enroll staff") and "1 template(s) added" in said("enroll staff")
    assert "ledger intact" in said("auditor ledger verify")
    assert (tmp_path / "crowd_redacted.mp4").is_file()                      # crowd_redacted.mp4
    assert sorted(p.name for p in (tmp_path / "out" / "trip").iterdir()) == ["p0.jpg", "p1.jpg"]
