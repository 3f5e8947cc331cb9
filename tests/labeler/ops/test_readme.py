"""The README against the code: every command is in its table, and the "Your data"
section works as written, from the example messages to the readers' table.

The walk-through runs the section's own blocks: the config file, the example
messages through ``check-message`` (the shown output must be what it prints),
the shell steps (``topics create``, ``doctor``, ``run``) and the Python
snippets (the producer, the readers) against the real broker, in a fresh
directory, with the broker, topic and group names overridden through the
environment as a user would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from labeler.ops.cli import cli

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
COMMAND_BOUND_S = 300  # a bound on each subprocess, not a timing assertion


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def fences(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each fenced code block, in order."""
    return [(m.group(1).strip(), m.group(2))
            for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)]


def cli_commands() -> list[str]:
    """Every visible command, with a group's subcommands as ``group sub``."""
    names = []
    for name, command in cli.commands.items():
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            names += [f"{name} {sub}" for sub, c in command.commands.items() if not c.hidden]
        else:
            names.append(name)
    return sorted(names)


def test_every_cli_command_is_in_the_readme_command_table() -> None:
    table = section("Commands")
    rows = [line for line in table.splitlines() if line.startswith("| `loglabel ")]
    listed = {re.match(r"\| `loglabel ([a-z-]+(?: [a-z][a-z-]*)?)", row).group(1)  # type: ignore[union-attr]
              for row in rows}
    for name in cli_commands():
        assert name in listed, f"`loglabel {name}` is missing from the README's command table"
    assert {"check-message", "topics create", "profile", "drift-eval"} <= listed
    stale = {n for n in listed if n not in cli_commands()}
    assert not stale, f"the README lists commands that do not exist: {stale}"


def _messages(blocks: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(envelope, kind, message) of the section's example messages."""
    out = []
    for info, body in blocks:
        parts = info.split()
        if parts[:1] == ["json"] and len(parts) == 3:
            out.append((parts[1], parts[2], body.strip()))
    return out


def _run(command: str, cwd: Path, env: dict[str, str], stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, input=stdin, text=True,
                          capture_output=True, timeout=COMMAND_BOUND_S)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGLABEL_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra}


def test_example_messages_decode_as_the_readme_says(tmp_path: Path) -> None:
    blocks = fences(section("Your data"))
    (config,) = [body for info, body in blocks if info == "toml my.toml"]
    (tmp_path / "my.toml").write_text(config)
    messages = _messages(blocks)
    assert {e for e, _, _ in messages} == {"fluentd", "fluent-bit", "logstash", "json"}
    assert sorted(k for _, k, _ in messages) == ["outcome"] * 4 + ["prediction"] * 4
    env = _env({})
    lines = "\n".join(m for _, _, m in messages) + "\n"
    done = _run("loglabel check-message --config my.toml", tmp_path, env, lines)
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = [json.loads(v) for v in re.split(r"(?m)^(?=\{)", done.stdout) if v.strip()]
    assert [next(iter(v)) for v in verdicts] == [k for _, k, _ in messages]
    for (_, kind, message), verdict in zip(messages, verdicts, strict=True):
        record = verdict[kind]
        wanted = json.loads(message)["request_id"]
        assert record.get("prediction_id", record.get("join_id")) == wanted
    # the console examples print exactly what the README shows
    for fluentd in (m for e, k, m in messages if (e, k) == ("fluentd", "prediction")):
        (tmp_path / "fluentd-prediction.json").write_text(fluentd + "\n")
    consoles = [body for info, body in blocks if info == "console"]
    assert len(consoles) == 2
    for body in consoles:
        command, _, shown = body.partition("\n")
        assert command.startswith("$ ")
        done = _run(command[2:], tmp_path, env)
        assert json.loads(done.stdout) == json.loads(shown), done.stdout + done.stderr
        assert done.returncode == (1 if "dead_letter" in shown else 0)


def _table(text: str) -> dict[str, tuple[bool, float]]:
    rows = re.findall(r"^\| (r-\d+) \| (true|false) \| ([0-9.]+) \|$", text, re.M)
    return {rid: (clicked == "true", float(revenue)) for rid, clicked, revenue in rows}


@pytest.mark.kafka
def test_the_your_data_section_end_to_end(tmp_path: Path, kafka_bootstrap: str,
                                          unique: Callable[[str], str]) -> None:
    text = section("Your data")
    blocks = fences(text)
    (config,) = [body for info, body in blocks if info == "toml my.toml"]
    (tmp_path / "my.toml").write_text(config)
    messages = _messages(blocks)
    for kind, name in (("prediction", "predictions.jsonl"), ("outcome", "outcomes.jsonl")):
        (tmp_path / name).write_text("".join(m + "\n" for _, k, m in messages if k == kind))
    env = _env({
        "LOGLABEL_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LOGLABEL_KAFKA__GROUP_ID": unique("readme"),
        "LOGLABEL_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "LOGLABEL_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        "LOGLABEL_TOPICS__PREDICTIONS": unique("predictions"),
        "LOGLABEL_TOPICS__OUTCOMES": unique("outcomes"),
        "LOGLABEL_TOPICS__DEAD_LETTER": unique("dead-letter"),
        "LOGLABEL_TOPICS__DRIFT": unique("drift"),
    })
    shell = [body for info, body in blocks if info == "sh"]
    python = [body for info, body in blocks if info == "python"]
    assert len(shell) == 2 and len(python) == 2
    for line in shell[0].splitlines():  # topics create, doctor
        command = line.split("#")[0].strip()
        done = _run(command, tmp_path, env)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        if "topics create" in command:
            assert done.stdout.count("created ") == 4, done.stdout
            assert f"{env['LOGLABEL_TOPICS__PREDICTIONS']} (4 partitions" in done.stdout
    producer = subprocess.run([sys.executable, "-c", python[0]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=COMMAND_BOUND_S)
    assert producer.returncode == 0, producer.stderr
    (run,) = [line.split("#")[0].strip() for line in shell[1].splitlines() if line.strip()]
    done = _run(run, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    # the readers, as written; each must give the README's table
    scope: dict[str, Any] = {}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(python[1], scope)  # noqa: S102 - the README's own snippet is what is tested
        frames = {"pandas": scope["df"], "pyarrow": scope["table"].to_pandas(),
                  "duckdb": scope["rel"].df(), "polars": scope["frame"].to_pandas()}
    finally:
        os.chdir(cwd)
    expected = _table(text)
    assert len(expected) == 4
    for reader, frame in frames.items():
        got = {row.prediction_id: (bool(row.label_clicked), round(float(row.label_revenue), 6))
               for row in frame.itertuples()}
        assert got == expected, f"{reader}: {got}"
        assert [int(h) for h in frame["hour"]] == [6] * len(frame), reader
