"""A pyannote.audio speaker-diarization pipeline directory with randomly initialised models.

It has the layout of a hub pipeline (config.yaml + segmentation/, embedding/, plda/), so it
exercises the real loading and inference path offline; its output is meaningless.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")


def _save_checkpoint(model, folder: Path) -> None:
    import lightning
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)  # pyannote's versions, architecture, specifications
    torch.save(checkpoint, folder / "pytorch_model.bin")


def build_random_pipeline(root: Path, embedding_dim: int = 32, lda_dim: int = 16) -> Path:
    import pyannote.audio
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)
    segmentation = PyanNet(
        lstm={"hidden_size": 32, "num_layers": 1, "bidirectional": True},
        linear={"hidden_size": 32, "num_layers": 1},
    )
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=5.0,
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    segmentation.build()
    _save_checkpoint(segmentation, root / "segmentation")

    embedding = XVectorMFCC(dimension=embedding_dim)
    embedding.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0)
    embedding.build()
    _save_checkpoint(embedding, root / "embedding")

    rng = np.random.default_rng(0)
    (root / "plda").mkdir(parents=True, exist_ok=True)
    np.savez(
        root / "plda" / "xvec_transform.npz",
        mean1=rng.normal(size=embedding_dim),
        mean2=0.1 * rng.normal(size=lda_dim),
        lda=rng.normal(size=(embedding_dim, lda_dim)),
    )
    rotation, _ = np.linalg.qr(rng.normal(size=(lda_dim, lda_dim)))
    np.savez(root / "plda" / "plda.npz", mu=np.zeros(lda_dim), tr=rotation, psi=np.linspace(2.0, 0.5, lda_dim))

    config = {
        "dependencies": {"pyannote.audio": pyannote.audio.__version__},
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": "$model/segmentation",
                "embedding": "$model/embedding",
                "plda": "$model/plda",
                "clustering": "VBxClustering",
                "embedding_exclude_overlap": True,
                "segmentation_batch_size": 8,
                "embedding_batch_size": 8,
            },
        },
        "params": {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
        },
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root
