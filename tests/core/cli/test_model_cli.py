"""``train``, ``import-legacy``, ``recommend`` as scripts call them: JSON, exit codes, messages."""

from __future__ import annotations

import json

from tests.conftest import LEGACY_MODEL

LEGACY = LEGACY_MODEL
CENTRE = ["--lat", "40.4168", "--lng", "-3.7038"]
PREFS = json.dumps([5, 0, 0, 3] + [0] * 25)


def test_train_and_recommend(cli, tmp_path):  # noqa: F811
    users = tmp_path / "users.csv"
    cli("data", "generate", "--users", "400", "--seed", "4", "--out", str(users), check=True)
    cli("data", "ingest", str(users), "--name", "madrid", check=True)
    out = cli("train", "svd", "--dataset", "madrid@1", "--param", "rank=5", check=True)
    trained = json.loads(out.stdout)
    assert trained["model"] == "svd" and trained["stage"] == "candidate"
    assert 0 < trained["metrics"]["ndcg@5"] <= 1 and trained["dataset"] == "madrid@1"
    assert trained["baseline"]["ndcg@5"] > 0

    no_prod = cli("recommend", "svd", "--prefs", PREFS, *CENTRE)
    assert no_prod.returncode == 2 and "no production version" in no_prod.stderr
    cli(
        "promote",
        "svd",
        trained["version"],
        "--stage",
        "production",
        "--reason",
        "test",
        check=True,
    )
    out = cli("recommend", "svd", "--prefs", PREFS, *CENTRE, "-k", "4", "--json", check=True)
    items = json.loads(out.stdout)
    assert len(items) == 4
    assert set(items[0]) == {"place_id", "name", "category", "score", "distance_m"}
    assert [i["score"] for i in items] != []

    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            [
                {"prefs": json.loads(PREFS), "lat": 40.4168, "lng": -3.7038, "k": 3},
                {"prefs": [1] * 29, "mask": [True] * 29, "lat": 40.45, "lng": -3.69, "k": 2},
            ]
        )
    )
    lists = json.loads(cli("recommend", "svd", "--users", str(batch), check=True).stdout)
    assert [len(x) for x in lists] == [3, 2]
    assert lists[0] == items[:3]


def test_import_legacy_and_bad_input(cli, tmp_path):  # noqa: F811
    out = cli(
        "import-legacy",
        "--model-file",
        str(LEGACY / "autoencoder.h5"),
        "--scaler",
        str(LEGACY / "scaler.save"),
        check=True,
    )
    imported = json.loads(out.stdout)
    assert imported["model"] == "planwise" and imported["version"] == "1.0.0"
    assert any("1.3.2" in w for w in imported["warnings"])
    version = ["--version", "1.0.0"]
    cases = [
        (["--prefs", json.dumps([1] * 28), *CENTRE], "29 ratings"),
        (["--prefs", json.dumps([1] * 28 + [7]), *CENTRE], "outside 0–5"),
        (["--prefs", "[1, 2", *CENTRE], "not valid JSON"),
        (["--prefs", json.dumps([1] * 28 + ["x"]), *CENTRE], "must be numbers"),
        (["--prefs", PREFS, "--lat", "nan", "--lng", "-3.7"], "finite"),
        (["--prefs", PREFS, *CENTRE, "-k", "0"], "k must be"),
    ]
    for args, message in cases:
        proc = cli("recommend", "planwise", *version, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
    unknown = cli("recommend", "planwise", "--version", "9.9.9", "--prefs", PREFS, *CENTRE)
    assert unknown.returncode == 2 and "9.9.9" in unknown.stderr
    bogus = tmp_path / "x.h5"
    bogus.write_bytes(b"not a model")
    bad = cli("import-legacy", "--model-file", str(bogus), "--scaler", str(LEGACY / "scaler.save"))
    assert bad.returncode == 2 and "x.h5" in bad.stderr
    listed = json.loads(cli("models", "list", "--json", check=True).stdout)
    assert [m["name"] for m in listed] == ["planwise"]
