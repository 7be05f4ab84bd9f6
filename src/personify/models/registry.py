"""Versioned model artefacts on disk: register, load, promote and roll back.

Every trained model is stored under ``root/<name>/v<N>/`` as ``model.joblib`` (the fitted
estimator) beside ``meta.json`` (features, parameters, metrics, training data window, time).
Which version serves is recorded in ``root/<name>/promotions.json`` as a history, so a
rollback returns to the version promoted before the current one. Every file is written to a
temporary name and renamed, so a crash never leaves a half-written artefact that looks valid.

>>> import tempfile
>>> reg = ModelRegistry(Path(tempfile.mkdtemp()))
>>> v = reg.register("churn", {"w": 1}, kind="churn", features=["recency"], params={},
...                  metrics={"roc_auc": 0.8}, data_window={"to": "2011-09-01"})
>>> reg.load("churn")[1].version
1
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import orjson

from personify.errors import Conflict, InvalidInput, NotFound, Problem

_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
_MODEL_FILE = "model.joblib"
_META_FILE = "meta.json"
_PROMOTIONS = "promotions.json"


@dataclass(frozen=True)
class ModelVersion:
    """What is known about one stored version of a model (its ``meta.json``)."""

    name: str
    version: int
    kind: str
    created_at: str
    features: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    data_window: Mapping[str, Any] = field(default_factory=dict)
    promoted: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        out["params"] = dict(self.params)
        out["metrics"] = dict(self.metrics)
        out["data_window"] = dict(self.data_window)
        return out


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidInput(
            f"invalid model name {name!r}",
            hint="use lower-case letters, digits, '_' or '-', starting with a letter (e.g. churn)",
            problems=[Problem("name", "must match ^[a-z][a-z0-9_-]{0,63}$")],
        )


class ModelRegistry:
    """Model versions on a directory (``settings.data_dir / "models"`` in a deployment)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    # -- writing --------------------------------------------------------------------------
    def register(
        self,
        name: str,
        model: Any,
        *,
        kind: str,
        features: Sequence[str],
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        data_window: Mapping[str, Any],
        promote: bool = False,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` (1, 2, 3, ...) and return it."""
        _check_name(name)
        with self._lock:
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder, prefix=".staging."))
            try:
                joblib.dump(model, staging / _MODEL_FILE)
                number = self._publish(name, staging, kind, features, params, metrics, data_window)
            except BaseException:
                for child in staging.glob("*"):
                    child.unlink()
                staging.rmdir()
                raise
            if promote:
                self._push_promotion(name, number)
        return self._meta(name, number)

    def _publish(
        self,
        name: str,
        staging: Path,
        kind: str,
        features: Sequence[str],
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        data_window: Mapping[str, Any],
    ) -> int:
        """Rename the staged folder to the next free ``v<N>``; returns N.

        The rename makes a version appear complete or not at all. If another process took
        the number first (the rename fails on a non-empty folder), the next one is tried.
        """
        for _ in range(20):
            number = max(self._numbers(name), default=0) + 1
            meta = ModelVersion(
                name=name,
                version=number,
                kind=kind,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                features=tuple(features),
                params=dict(params),
                metrics=dict(metrics),
                data_window=dict(data_window),
            )
            _atomic_write(staging / _META_FILE, _dumps(meta))
            try:
                os.rename(staging, self.root / name / f"v{number}")
                return number
            except OSError:
                if not (self.root / name / f"v{number}" / _META_FILE).exists():
                    raise
        raise Conflict(
            f"could not find a free version number for model {name!r}",
            hint="another process is registering versions of this model; retry",
        )

    def promote(self, name: str, version: int) -> ModelVersion:
        """Make ``version`` the one that serves (``load(name)`` returns it)."""
        with self._lock:
            if version not in self._numbers(name):
                raise self._missing(name, version)
            self._push_promotion(name, version)
        return self._meta(name, version)

    def rollback(self, name: str) -> ModelVersion:
        """Serve the version promoted before the current one again."""
        with self._lock:
            history = self._promotions(name)
            if len(history) < 2:
                raise Conflict(
                    f"model {name!r} has no earlier promoted version to roll back to",
                    hint=f"promote a version explicitly: personify models promote {name} <N>",
                )
            history.pop()
            self._write_promotions(name, history)
            return self._meta(name, history[-1])

    # -- reading --------------------------------------------------------------------------
    def load(self, name: str, version: int | None = None) -> tuple[Any, ModelVersion]:
        """The fitted model and its metadata (default: promoted version, else the latest)."""
        number = self._resolve(name, version)
        model = joblib.load(self.root / name / f"v{number}" / _MODEL_FILE)
        return model, self._meta(name, number)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every stored version of ``name``, oldest first."""
        numbers = self._numbers(name)
        if not numbers:
            raise self._missing(name, None)
        return [self._meta(name, n) for n in numbers]

    def names(self) -> list[str]:
        """Models with at least one stored version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._numbers(p.name))

    def current(self, name: str) -> ModelVersion:
        """Metadata of the version ``load(name)`` would return."""
        return self._meta(name, self._resolve(name, None))

    # -- internals ------------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None) -> int:
        numbers = self._numbers(name)
        if version is not None:
            if version not in numbers:
                raise self._missing(name, version)
            return version
        if not numbers:
            raise self._missing(name, None)
        history = self._promotions(name)
        return history[-1] if history else numbers[-1]

    def _numbers(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            numbered = child.name.startswith("v") and child.name[1:].isdigit()
            if numbered and (child / _META_FILE).is_file():
                found.append(int(child.name[1:]))
        return sorted(found)

    def _meta(self, name: str, number: int) -> ModelVersion:
        raw = orjson.loads((self.root / name / f"v{number}" / _META_FILE).read_bytes())
        history = self._promotions(name)
        meta = ModelVersion(
            name=raw["name"],
            version=int(raw["version"]),
            kind=raw["kind"],
            created_at=raw["created_at"],
            features=tuple(raw["features"]),
            params=raw["params"],
            metrics=raw["metrics"],
            data_window=raw["data_window"],
        )
        return replace(meta, promoted=bool(history) and history[-1] == number)

    def _promotions(self, name: str) -> list[int]:
        path = self.root / name / _PROMOTIONS
        if not path.is_file():
            return []
        return [int(v) for v in orjson.loads(path.read_bytes())]

    def _push_promotion(self, name: str, number: int) -> None:
        history = self._promotions(name)
        if not history or history[-1] != number:
            history.append(number)
        self._write_promotions(name, history)

    def _write_promotions(self, name: str, history: list[int]) -> None:
        _atomic_write(self.root / name / _PROMOTIONS, orjson.dumps(history))

    def _missing(self, name: str, version: int | None) -> NotFound:
        known = self._numbers(name)
        if not known:
            names = ", ".join(self.names()) or "none yet"
            return NotFound(
                f"no model named {name!r} in {self.root}",
                hint=f"train one first (personify train ...); registered models: {names}",
            )
        return NotFound(
            f"model {name!r} has no version {version}",
            hint=f"stored versions: {', '.join(str(n) for n in known)}",
        )


def _dumps(meta: ModelVersion) -> bytes:
    body = meta.as_dict()
    body.pop("promoted")  # promotion lives in promotions.json, which can change
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
