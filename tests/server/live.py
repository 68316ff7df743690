"""Run ``faceledger serve`` in a child process on a free loopback port (for start-up and browser tests)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

#: A command line with only ``serve`` registered (as cli/main.py will register it).
CLI = ("import typer\n"
       "from faceledger.cli.serve_command import register\n"
       "app = typer.Typer(add_completion=False)\n"
       "app.callback()(lambda: None)\n"
       "register(app)\n"
       "app()\n")
TOKEN = re.compile(r"^\s+(flk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})\s*$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``faceledger serve --port N --data-dir D ...`` as a child process, its output, its admin token."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None, pass_port: bool = True,
                 env: dict[str, str] | None = None) -> None:
        """``pass_port=False``: the port comes from a settings file (and must equal ``port``)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
        child_env.update({"FACELEDGER_RETENTION_EVERY_HOURS": "0", **(env or {})})
        cmd = [sys.executable, "-c", CLI, "serve", "--data-dir", str(data_dir), *args]
        if pass_port:
            cmd += ["--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=child_env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def token(self) -> str | None:
        found = [m.group(1) for m in map(TOKEN.match, self.lines) if m]
        return found[-1] if found else None

    def wait_ready(self, timeout: float = 120.0) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"faceledger serve exited with {self.proc.returncode}:\n{self.output}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"faceledger serve not ready after {timeout} s:\n{self.output}")

    def wait_exit(self, timeout: float = 120.0) -> int:
        """The exit code of a child that stops by itself (all of its output read)."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def __enter__(self) -> LiveServer:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
