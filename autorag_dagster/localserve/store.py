"""Which catalogue models are "pulled": one small manifest file per model in the models directory.

Manifests live in ``<models_dir>/autorag-localserve/<model>/<tag>.json``, a layout a real
Ollama sharing the same ``OLLAMA_MODELS`` directory never reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from autorag_dagster.core import atomic

from .catalogue import Catalogue, ModelSpec, ModelUnavailable, canonical_name


def default_models_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$OLLAMA_MODELS`` if set, else ``~/.cache/autorag/localserve-models``."""
    configured = env.get("OLLAMA_MODELS", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "autorag" / "localserve-models"


class ModelStore:
    def __init__(self, root: Path, catalogue: Catalogue):
        self.root = Path(root)
        self.catalogue = catalogue

    def _path(self, name: str) -> Path:
        model, tag = canonical_name(name).split(":")
        return self.root / "autorag-localserve" / model / f"{tag}.json"

    def get(self, name: str) -> ModelSpec | None:
        """The spec of a pulled model, or None when it is not pulled (or not servable)."""
        if name not in self.catalogue or not self._path(name).is_file():
            return None
        try:
            return self.catalogue[name]
        except ModelUnavailable:  # pulled, then its package was uninstalled: pulling again says what to install
            return None

    def is_pulled(self, name: str) -> bool:
        """Whether ``name`` has a manifest here (reads no weights)."""
        return name in self.catalogue and self._path(name).is_file()

    def modified_at(self, spec: ModelSpec) -> datetime:
        return datetime.fromtimestamp(self._path(spec.name).stat().st_mtime, UTC)

    def pulled(self) -> list[ModelSpec]:
        """Pulled models, most recently pulled first (as /api/tags lists them)."""
        specs = [spec for spec in map(self.get, self.catalogue) if spec is not None]
        return sorted(specs, key=self.modified_at, reverse=True)

    def write(self, spec: ModelSpec) -> None:
        atomic.write_json(self._path(spec.name), spec.manifest, indent=2)

    def remove(self, name: str) -> bool:
        path = self._path(name)
        if not path.is_file():
            return False
        path.unlink()
        return True
