"""What README.md and docs/ promise about the command line and the settings is what the code
does: every documented command parses, documented defaults are the settings' defaults, the
batch file is DESIGN's, and no document names a secret store nothing reads."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser
from core.config import Settings
from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def _documented_commands() -> list[str]:
    block = README.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
        if not line.startswith("python -m core "):
            continue
        first, *alternatives = line.removeprefix("python -m core ").split(" | ")
        commands += [first, *alternatives]
    return commands


COMMANDS = _documented_commands()


def _argv(command: str) -> list[str]:
    """The command as a shell would pass it, optional parts included, placeholders filled."""
    command = command.split(" < ", 1)[0]  # input redirection is the shell's
    command = re.sub(r"\[(--?[^\]]*)\]", r"\1", command)  # [--json] → --json
    command = command.replace("…", "0")
    filled = {"NAME": "autoencoder", "VERSION": "1.0.0", "ROLE": "viewer", "MIN": "60"}
    return [filled.get(word, word) for word in shlex.split(command)]


def test_the_readme_documents_commands() -> None:
    assert len(COMMANDS) >= 25
    assert any(c.startswith("recommend planwise --users") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_documented_command_parses(command: str) -> None:
    args = build_parser().parse_args(_argv(command))
    assert callable(args.handler)


def test_the_documented_batch_format_is_designs_and_is_accepted(tmp_path: Path) -> None:
    """DESIGN: ``--users FILE.json`` is a list of ``{prefs, mask, lat, lng, k}`` and returns a
    list of lists. The README says the same, and the command reads exactly that (it refuses
    a list of lists, with a message that says what it wants)."""
    design = (PROJECT_ROOT.parent / "shared" / "DESIGN.md").read_text(encoding="utf-8")
    line = next(c for c in README.splitlines() if "recommend planwise --users" in c)
    assert "{prefs, mask, lat, lng, k}" in line and "list of lists" in line
    if "{prefs, mask, lat, lng, k}" not in design and (PROJECT_ROOT.parent / "shared").exists():
        pytest.fail("DESIGN.md no longer describes the batch file as the README does")

    lists = tmp_path / "lists.json"
    lists.write_text(json.dumps([[5] + [0] * 28]))
    proc = subprocess.run(
        [sys.executable, "-m", "core", "recommend", "x", "--users", str(lists)],
        cwd=PROJECT_ROOT,
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
            "DATA_DIR": str(tmp_path / "data"),
            "ARTIFACTS_DIR": str(tmp_path / "models"),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "{prefs, mask, lat, lng, k}" in proc.stderr and "Traceback" not in proc.stderr


def _configuration_table() -> dict[str, str]:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_documented_defaults_are_the_settings_defaults() -> None:
    table = _configuration_table()
    fields = Settings.model_fields
    checked = []
    for variable, documented in table.items():
        field = fields.get(variable.lower())
        if field is None:
            continue
        default = field.default
        if default is None:
            assert documented.startswith("unset") or "generated" in documented, (
                variable,
                documented,
            )
        else:
            value = default.as_posix() if isinstance(default, Path) else default
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert documented == f"`{shown}`", (variable, documented, shown)
        checked.append(variable)
    assert {"API_MODEL", "DATABASE_URL", "MAX_FILE_ROWS", "MAX_FILE_BYTES"} <= set(checked)


def test_no_document_names_a_secret_store_nothing_reads() -> None:
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("core", "dashboard", "api", "jobs")
        for p in (PROJECT_ROOT / folder).rglob("*.py")
    )
    docs = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [PROJECT_ROOT / "README.md", *PROJECT_ROOT.glob("docs/*.md")]
    )
    if "st.secrets" not in code:
        assert "secrets.toml" not in docs


def test_models_show_checks_integrity_as_documented(backend, capsys) -> None:
    """docs/operations.md: ``models show`` reports the integrity of each version's files."""
    from core.accounts import bootstrap
    from core.accounts.auth import SYSTEM
    from core.cli import main
    from core.training import legacy
    from tests.conftest import LEGACY_MODEL as LEGACY

    assert "models show NAME VERSION` reports the integrity" in (
        PROJECT_ROOT / "docs" / "operations.md"
    ).read_text(encoding="utf-8").replace("\n", " ").replace("  ", " ")
    bootstrap.ensure_ready()
    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    capsys.readouterr()
    assert main(["models", "show", v.model, v.version, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["integrity_ok"] is True and set(shown["integrity"].values()) == {"ok"}

    name = sorted(v.files)[0]
    target = backend.artifacts / v.artifact_dir / name
    target.write_bytes(target.read_bytes() + b"tampered")
    assert main(["models", "show", v.model, v.version, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["integrity_ok"] is False and shown["integrity"][name] == "modified"
    assert main(["models", "show", v.model, v.version]) == 0
    assert f"integrity FAILED: {name}" in capsys.readouterr().out
