"""Artifact integrity and the orphan sweep from the command line."""

from __future__ import annotations

import json

from tests.conftest import LEGACY_MODEL as LEGACY


def test_models_show_names_a_file_the_registry_does_not_list(cli) -> None:  # noqa: F811
    cli("init", check=True)
    cli(
        "import-legacy",
        "--model-file",
        str(LEGACY / "autoencoder.h5"),
        "--scaler",
        str(LEGACY / "scaler.save"),
        check=True,
    )
    shown = cli("models", "show", "planwise", "1.0.0", check=True).stdout
    assert "integrity ok" in shown
    folder = cli.root / "models" / "autoencoder" / "planwise" / "v1.0.0"
    (folder / "model.keras").write_bytes(b"dropped in")
    shown = cli("models", "show", "planwise", "1.0.0", check=True).stdout
    assert "integrity FAILED: model.keras" in shown
    as_json = json.loads(cli("models", "show", "planwise", "1.0.0", "--json", check=True).stdout)
    assert as_json["integrity"]["model.keras"] == "unlisted"
    assert as_json["integrity"]["model.h5"] == "ok"
