"""``train``, ``import-legacy`` and ``recommend``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import inputs
from core.cli.common import SEED, actor, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table, progress_bar
from core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train, evaluate and register a candidate version")
    p.add_argument("family", help="popularity, svd, autoencoder, transfer or embeddings")
    p.add_argument("--dataset", required=True, help="NAME or NAME@VERSION")
    p.add_argument("--model", help="model name (default: the family's name)")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a hyperparameter"
    )
    p.add_argument("--parent", metavar="NAME@VERSION", help="parent version (transfer)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument(
        "--folds",
        type=int_arg(minimum=0, maximum=20),
        default=0,
        help="also cross-validate over k folds",
    )
    p.add_argument("--description", default="")
    add_user_option(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser("import-legacy", help="register a Keras .h5 autoencoder + scaler")
    p.add_argument("--model-file", type=Path, required=True)
    p.add_argument("--scaler", type=Path, required=True)
    p.add_argument("--name", default="planwise")
    p.add_argument("--dataset", help="evaluate on this dataset (NAME[@VERSION])")
    p.add_argument("--description", default="")
    add_user_option(p)
    p.set_defaults(handler=_import_legacy)

    p = sub.add_parser("recommend", help="ranked places for one user or a batch")
    p.add_argument("name")
    p.add_argument("--version", help="default: the production version")
    p.add_argument("--prefs", help="JSON list of 29 ratings 0–5")
    p.add_argument("--mask", help="JSON list of 29 booleans: which ratings the user gave")
    p.add_argument("--lat", type=float)
    p.add_argument("--lng", type=float)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--users", type=Path, help="JSON file: a list of {prefs, mask, lat, lng, k}")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_recommend)

    p = sub.add_parser("report", help="a version's evidence pack as one self-contained HTML")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_report)


def parse_version_ref(ref: str, option: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise BadInput(f"{option} must be NAME@VERSION, got {ref!r}")
    return name, version


def _train(args: argparse.Namespace) -> int:
    ready()
    from core import training

    update, close = progress_bar(f"train {args.family}")
    try:
        result = training.train(
            actor=actor(args),
            family=args.family,
            dataset=args.dataset,
            model=args.model,
            params=inputs.parse_key_values(args.param),
            parent=parse_version_ref(args.parent, "--parent") if args.parent else None,
            seed=args.seed,
            folds=args.folds,
            progress=update,
            description=args.description,
        )
    finally:
        close()
    v = result.version
    print_json(
        {
            "model": v.model,
            "version": v.version,
            "stage": v.stage,
            "family": v.family,
            "metrics": result.metrics,
            "baseline": result.baseline,
            "dataset": None if v.dataset is None else v.dataset.label,
            "parent": None if v.parent is None else "@".join(v.parent),
            "duration_s": round(result.duration_s, 2),
        }
    )
    return 0


def _import_legacy(args: argparse.Namespace) -> int:
    ready()
    from core.training import legacy

    v = legacy.import_legacy(
        actor=actor(args),
        model_file=args.model_file,
        scaler_file=args.scaler,
        name=args.name,
        dataset=args.dataset,
        description=args.description,
    )
    print_json(
        {
            "model": v.model,
            "version": v.version,
            "stage": v.stage,
            "family": v.family,
            "metrics": v.metrics,
            "warnings": v.metadata.get("import_warnings", []),
        }
    )
    return 0


def _json_arg(text: str, option: str) -> Any:
    return inputs.parse_json(text, option)


def _item(rec: Any) -> dict[str, Any]:
    return {
        "place_id": rec.place_id,
        "name": rec.name,
        "category": rec.category,
        "score": round(rec.score, 6),
        "distance_m": round(rec.distance_m, 1),
    }


def _batch(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """DESIGN's batch file: a JSON list of ``{prefs, mask, lat, lng, k}`` (``mask`` and ``k``
    optional); each entry is checked by the same rules as one user's options, and an error
    names the entry."""
    from core.serving import predict

    what = "--users"
    users = inputs.read_json_file(args.users, what)
    if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
        raise BadInput(f"{what} must hold a JSON list of objects {{prefs, mask, lat, lng, k}}")
    if not users:
        return []
    prefs, masks = [], []
    for i, u in enumerate(users):
        missing = [key for key in ("prefs", "lat", "lng") if key not in u]
        if missing:
            raise BadInput(f"{what} entry {i} lacks {', '.join(missing)}")
        unknown = sorted(set(u) - {"prefs", "mask", "lat", "lng", "k"})
        if unknown:
            raise BadInput(f"{what} entry {i} has unknown key(s) {', '.join(unknown)}")
        row = predict.check_ratings(u["prefs"], what=f"{what} entry {i} prefs")
        if row.shape[0] != 1:
            raise BadInput(f"{what} entry {i} prefs must be one list of 29 ratings")
        prefs.append(row[0])
        masks.append(predict.check_mask(u.get("mask"), row, what=f"{what} entry {i} mask")[0])
    lists = predict.recommend_batch(
        args.name,
        args.version,
        prefs,
        [u["lat"] for u in users],
        [u["lng"] for u in users],
        [u.get("k", args.k) for u in users],
        masks,
    )
    return [[_item(r) for r in items] for items in lists]


def _recommend(args: argparse.Namespace) -> int:
    ready()
    from core.serving import predict

    if args.users is not None:
        print_json(_batch(args))
        return 0
    missing = [
        o
        for o, v in (("--prefs", args.prefs), ("--lat", args.lat), ("--lng", args.lng))
        if v is None
    ]
    if missing:
        raise BadInput(f"recommend needs {', '.join(missing)} (or --users FILE)")
    prefs = _json_arg(args.prefs, "--prefs")
    if not isinstance(prefs, list):
        raise BadInput("--prefs must be a JSON list of 29 ratings")
    mask = None
    if args.mask:
        mask = predict.check_mask(
            _json_arg(args.mask, "--mask"),
            predict.check_ratings(prefs, what="--prefs"),
            what="--mask",
        )
    items = predict.recommend(
        args.name, args.version, prefs, mask=mask, lat=args.lat, lng=args.lng, k=args.k
    )
    rows = [_item(r) for r in items]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["#", "place", "category", "score", "distance (m)"],
            [
                [i + 1, r["name"], r["category"], f"{r['score']:.4f}", f"{r['distance_m']:.0f}"]
                for i, r in enumerate(rows)
            ],
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    ready()
    from core.review import report

    if args.out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--out must end in .html, got {args.out.name!r}")
    inputs.prepare_output(args.out, "the report")
    page, summary = report.build(args.name, args.version)
    size = inputs.write_text(args.out, "the report", page)
    print_json({**summary, "path": str(args.out), "bytes": size})
    return 0
