"""Loading a job's data: the schema (from the channels, or made up from the objective), the train, validation
and test channels, each checked, on every host.

Each host reads the train files in its own channel directory (ShardedByS3Key). Validation/test are meant to be
FullyReplicated: the hosts compare fingerprints of what they read; if all agree each uses its copy, otherwise
the shards are gathered, so rank 0 always evaluates on the full sets. schema.json may reach only one host when
the train channel is sharded; the first host that has it sends it to the others. Every failure is raised
identically on every rank.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, overload

import numpy as np

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import data_io
    from training_scripts.host_group import Group, coordinated
    from training_scripts.job_options import DEFAULT_EVAL_METRICS, UsageError
else:
    import data_io  # type: ignore[no-redef]
    from host_group import Group, coordinated  # type: ignore[no-redef]
    from job_options import DEFAULT_EVAL_METRICS, UsageError  # type: ignore[no-redef]


@dataclass
class Loaded:
    schema: data_io.Schema
    objective: str
    task: str
    classes: list[str]
    hps: dict[str, Any]
    train: data_io.Split
    validation: data_io.Split
    test: data_io.Split | None
    validation_full: data_io.Split  # the whole validation set (gathered if it was sharded)
    test_full: data_io.Split | None
    train_rows: int


class _Splits(TypedDict):
    train: data_io.Split
    validation: data_io.Split
    test: data_io.Split | None


def _local_schema(args: argparse.Namespace) -> Mapping[str, Any] | None:
    path = data_io.find_schema(args.schema, args.train)
    return data_io.load_schema(path).raw if path is not None else None


def _resolve_schema(doc: Mapping[str, Any] | None, args: argparse.Namespace, hps: dict[str, Any]) -> data_io.Schema:
    if doc is None:
        if hps["objective"] is None:
            where = args.schema or args.train
            raise data_io.DataError(
                f"{where}: no schema.json in the train (or schema) channel, and no objective hyperparameter; "
                "run `sagecycle prepare` or pass objective"
            )
        if hps["objective"] == "multi:softprob" and not hps["num_class"]:
            raise UsageError(
                "without a schema.json, multi:softprob needs the num_class hyperparameter", code="num-class"
            )
        width = data_io.first_row_width(args.validation) or data_io.first_row_width(args.train) or 1
        doc = data_io.synthesize_schema(width - 1, hps["objective"], hps["num_class"])
    schema = data_io.schema_from_dict(doc)
    if hps["num_class"] and schema.task == "multiclass" and hps["num_class"] != len(schema.classes):
        raise UsageError(
            f"num_class={hps['num_class']} but schema.json lists {len(schema.classes)} classes", code="num-class"
        )
    objective = hps["objective"] or schema.objective
    if objective != schema.objective:  # an explicit objective wins; the written schema says so
        k = (hps["num_class"] or len(schema.classes)) if objective == "multi:softprob" else 2
        classes = list(schema.classes) if len(schema.classes) == k else [str(i) for i in range(k)]
        task = data_io.OBJECTIVES[objective]
        doc = {**doc, "objective": objective, "label": {**doc["label"], "task": task, "classes": classes}}
        if task == "regression":
            doc["label"]["classes"] = []
        schema = data_io.schema_from_dict(doc)
    return schema


def _read_local(args: argparse.Namespace, schema: data_io.Schema, hps: dict[str, Any], group: Group) -> _Splits:
    if not args.train:
        raise UsageError("no train channel: set SM_CHANNEL_TRAIN or --train", code="missing-channel")
    if not args.validation:
        raise UsageError(
            "no validation channel: early stopping and the threshold need SM_CHANNEL_VALIDATION", code="missing-channel"
        )
    sharded = group.world > 1  # an empty shard on one host is fine as long as the whole set is not empty

    def read(name: str) -> data_io.Split:
        directory = getattr(args, name)
        split = data_io.read_channel(directory, schema.n_columns, channel=name, schema=schema, allow_empty=sharded)
        data_io.check_split(split, schema, schema.objective, hps["num_class"])
        return split

    train = read("train")
    validation = read("validation")
    return _Splits(train=train, validation=validation, test=read("test") if args.test else None)


def _fingerprint(split: data_io.Split | None) -> tuple[int, int] | None:
    if split is None:
        return None
    return split.rows, zlib.crc32(split.X.tobytes(), zlib.crc32(split.y.tobytes()))


@overload
def _whole(group: Group, split: data_io.Split) -> data_io.Split: ...
@overload
def _whole(group: Group, split: data_io.Split | None) -> data_io.Split | None: ...
def _whole(group: Group, split: data_io.Split | None) -> data_io.Split | None:
    """The full split on every rank: the local one if all ranks read the same rows, else all shards."""
    prints = group.gather(_fingerprint(split))
    if split is None or all(p == prints[0] for p in prints):
        return split
    parts = group.gather((split.y, split.X))
    y = np.concatenate([p[0] for p in parts])
    X = np.concatenate([p[1] for p in parts])
    return data_io.Split(y, X, split.files[:1] or [Path("<all hosts>")], [len(y)])


def load(args: argparse.Namespace, group: Group) -> Loaded:
    """Schema and channels, checked; every failure is raised identically on every rank."""
    hps = dict(args.hyperparameters)
    # With a sharded train channel schema.json may reach only one host: take the first rank's copy.
    docs = group.gather(coordinated(group, _local_schema, args))
    doc = next((d for d in docs if d is not None), None)
    schema = coordinated(group, _resolve_schema, doc, args, hps)
    task = schema.task
    if task == "multiclass":
        hps["num_class"] = hps["num_class"] or len(schema.classes)
    else:
        hps["num_class"] = None
    hps["objective"] = schema.objective
    hps["eval_metric"] = hps["eval_metric"] or list(DEFAULT_EVAL_METRICS[schema.objective])
    splits: _Splits = coordinated(group, _read_local, args, schema, hps, group)
    validation_full = _whole(group, splits["validation"])
    test_full = _whole(group, splits["test"])
    train_rows = int(group.sum(np.array([splits["train"].rows]))[0])
    counts = group.sum(np.array([_class_counts(splits["train"].y, task, len(schema.classes))]).reshape(-1))

    def check_whole() -> None:
        if train_rows == 0:
            raise data_io.DataError(f"{args.train}: channel 'train' is empty on every host")
        for name, split in (("validation", validation_full), ("test", test_full)):
            if split is not None and split.rows == 0:
                raise data_io.DataError(f"{getattr(args, name)}: channel '{name}' is empty on every host")
        if task != "regression":
            # AUC (the binary primary metric) and the threshold are undefined on a single class.
            for name, split in (("validation", validation_full), ("test", test_full if task == "binary" else None)):
                if split is None:
                    continue
                present = np.unique(split.y)
                if len(present) < 2:
                    code = int(present[0])
                    label = schema.classes[code] if code < len(schema.classes) else str(code)
                    first = split.files[0] if split.files else getattr(args, name)
                    raise data_io.DataError(
                        f"{first}: rows 1-{split.rows}: every {name} label is class {code} ({label!r}); AUC, "
                        "early stopping and the threshold need at least two classes"
                    )
            if np.count_nonzero(counts) < 2:
                raise data_io.DataError(f"{args.train}: every train label is the same class; nothing to learn")

    coordinated(group, check_whole)
    return Loaded(
        schema=schema,
        objective=schema.objective,
        task=task,
        classes=list(schema.classes) or ([str(i) for i in range(hps["num_class"])] if hps["num_class"] else []),
        hps=hps,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        validation_full=validation_full,
        test_full=test_full,
        train_rows=train_rows,
    )


def _class_counts(y: np.ndarray, task: str, k: int) -> list[float]:
    if task == "regression":
        return [0.0]
    return np.bincount(y.astype(np.int64), minlength=max(k, 2))[: max(k, 2)].astype(float).tolist()
