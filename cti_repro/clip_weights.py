"""Which open_clip weights and architecture a CLIP tag means, found without the network.

open_clip 3.3 builds ``ViT-B-32`` with ``nn.GELU`` while its pretrained config marks the
``openai`` tag ``quick_gelu`` (``create_model`` only warns); :func:`clip_pretrained_cfg` reads that
config for any model and tag, :func:`cached_checkpoint` finds the file open_clip would load, and
:func:`image_weights_key` is what the image feature cache key needs beyond the names.

A local checkpoint file has no pretrained config, and a state dict's keys are the same for GELU and
QuickGELU weights, so :func:`resolve_quick_gelu` decides the activation of a file from its format
(OpenAI's TorchScript release, an ``open_clip_config.json`` beside it) or from the explicit
``encoders.image.quick_gelu``, and refuses to guess otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parent / "resources"  # Tiny-ViT-32.json: open_clip configs of this package
# The key resolved by a batch for the processes it starts: `import open_clip` alone takes ~3.4 s
# on 2 cores, which every row kernel would otherwise pay for a cache lookup (~2 min per study).
KEY_ENV = "CTI_REPRO_IMAGE_WEIGHTS_KEY"


def _register_custom_configs() -> None:
    import open_clip

    for cfg in sorted(RESOURCES.glob("*.json")):
        if cfg.stem not in open_clip.list_models():
            open_clip.add_model_config(cfg)


def clip_pretrained_cfg(model: str, pretrained: str) -> dict[str, Any]:
    """open_clip's pretrained config of ``model`` / tag ``pretrained`` ({} for a file, ``none`` or an unknown tag)."""
    from open_clip.pretrained import get_pretrained_cfg

    tag = None if pretrained.lower() in ("", "none", "random") else pretrained
    return dict(get_pretrained_cfg(model, tag)) if tag and not os.path.isfile(tag) else {}


def resolve_quick_gelu(model: str, pretrained: str, quick_gelu: bool | None = None) -> tuple[bool, str]:
    """Whether the weights ``pretrained`` need QuickGELU, and what decided it.

    In order: the explicit ``quick_gelu`` (``encoders.image.quick_gelu``); for a tag, open_clip's
    pretrained config of the tag (``none`` / unknown: open_clip's model config, GELU); for a file,
    :func:`checkpoint_quick_gelu`.

    Raises:
        ConfigError: a checkpoint file whose format does not record the activation, and no
            explicit ``quick_gelu``.
    """
    if quick_gelu is not None:
        return bool(quick_gelu), "encoders.image.quick_gelu"
    if os.path.isfile(pretrained):
        return checkpoint_quick_gelu(Path(pretrained))
    if pretrained.lower() in ("", "none", "random"):
        return False, "random weights: open_clip's model config"
    return bool(clip_pretrained_cfg(model, pretrained).get("quick_gelu", False)), f"open_clip's pretrained config of tag {pretrained}"


def checkpoint_quick_gelu(path: Path) -> tuple[bool, str]:
    """The activation a checkpoint file's format records, and which format said so.

    * a TorchScript archive (a zip with ``code/``): OpenAI's own release format (``clip.load``'s
      ``ViT-B-32.pt``); every OpenAI CLIP model was trained with QuickGELU;
    * ``open_clip_config.json`` beside the file (open_clip's hub layout): its ``model_cfg.quick_gelu``
      (absent: GELU, as open_clip reads it).

    Raises:
        ConfigError: any other file (a plain state dict or safetensors: the same keys for both
            activations); the message names the file and the key that decides.
    """
    from cti_repro.config.schema import ConfigError

    sidecar = path.parent / "open_clip_config.json"
    if sidecar.is_file():
        try:
            model_cfg = json.loads(sidecar.read_text()).get("model_cfg")
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{sidecar}: not a readable open_clip config ({type(exc).__name__}: {exc})") from exc
        if isinstance(model_cfg, dict):
            return bool(model_cfg.get("quick_gelu", False)), f"{sidecar.name} beside the checkpoint"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any("/code/" in f"/{n}" for n in z.namelist()):
                return True, "TorchScript archive: OpenAI's release format (QuickGELU)"
    raise ConfigError(
        f"encoders.image.pretrained: {path} is a state dict that does not record the activation its weights "
        "were trained with (GELU and QuickGELU weights have the same keys); set encoders.image.quick_gelu: "
        "true for OpenAI CLIP weights (e.g. the `openai` tag's file) or false for LAION / DataComp open_clip "
        "weights, or use OpenAI's TorchScript .pt or the open_clip tag itself")


def cached_checkpoint(model: str, pretrained: str) -> Path | None:
    """The checkpoint file open_clip would load for ``model`` / ``pretrained``, if it is on disk; no network.

    A file path is itself; a tag is looked up where open_clip caches it (the Hugging Face hub cache
    for ``hf_hub`` entries, safetensors first as open_clip prefers them; ``~/.cache/clip`` for URLs).
    """
    if os.path.isfile(pretrained):
        return Path(pretrained).resolve()
    pcfg = clip_pretrained_cfg(model, pretrained)
    if pcfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_WEIGHTS_NAME
        from open_clip.pretrained import _get_safe_alternatives

        repo, name = os.path.split(pcfg["hf_hub"])
        name = name or HF_WEIGHTS_NAME
        for fname in [*_get_safe_alternatives(name), name]:
            hit = try_to_load_from_cache(repo, fname)
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    if pcfg.get("url"):
        p = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(pcfg["url"])
        return p if p.is_file() else None
    return None


def _activation(net) -> str:
    """``QuickGELU`` or ``GELU``: the activation of the transformer MLPs open_clip actually built."""
    from open_clip.transformer import QuickGELU

    return "QuickGELU" if any(isinstance(m, QuickGELU) for m in net.modules()) else "GELU"


def image_weights_key(model: str, pretrained: str, quick_gelu: bool | None = None) -> dict[str, Any]:
    """What the image features depend on beyond the names: the checkpoint on disk (name, size,
    mtime; ``random`` when there is none, so a random-weight cache never serves a run that now has
    real weights), the activation the weights need (:func:`resolve_quick_gelu`; raises its
    ``ConfigError``) and open_clip's preprocessing for them.

    Inside :func:`exported_key` (a batch and the workers it starts) the key resolved there is used.
    """
    try:
        known = json.loads(os.environ.get(KEY_ENV) or "{}")
    except ValueError:
        known = {}
    if isinstance(known, dict) and (known.get("model"), known.get("pretrained"), known.get("quick_gelu")) == (
            model, pretrained, quick_gelu):
        return known["key"]
    import open_clip

    _register_custom_configs()
    ckpt = cached_checkpoint(model, pretrained)
    pcfg = clip_pretrained_cfg(model, pretrained)
    quick, _ = resolve_quick_gelu(model, pretrained, quick_gelu)
    vision = (open_clip.get_model_config(model) or {}).get("vision_cfg", {})
    pre = {k: pcfg.get(k) for k in ("mean", "std", "interpolation", "resize_mode")}
    st = ckpt.stat() if ckpt else None
    key = {"weights": {"file": ckpt.name, "size": st.st_size, "mtime": int(st.st_mtime)} if st else "random",
           "quick_gelu": quick,
           "preprocess": {"image_size": vision.get("image_size"), **pre, "open_clip": open_clip.__version__}}
    return json.loads(json.dumps(key))  # JSON types (lists, not tuples): the same value as an exported key


@contextlib.contextmanager
def exported_key(model: str, pretrained: str, quick_gelu: bool | None = None) -> Iterator[dict[str, str]]:
    """Resolve :func:`image_weights_key` once and hand it to the processes started meanwhile
    (row workers, their kernels, Ray workers via ``runtime_env``) in ``$CTI_REPRO_IMAGE_WEIGHTS_KEY``.

    Yields:
        ``{name: value}``: the environment entry (for engines that pass environments explicitly).
    """
    before = os.environ.get(KEY_ENV)
    os.environ.pop(KEY_ENV, None)  # resolve afresh: the weights on disk may have changed since
    key = image_weights_key(model, pretrained, quick_gelu)
    entry = {KEY_ENV: json.dumps({"model": model, "pretrained": pretrained, "quick_gelu": quick_gelu, "key": key})}
    os.environ.update(entry)
    try:
        yield entry
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before


__all__ = ["clip_pretrained_cfg", "resolve_quick_gelu", "checkpoint_quick_gelu", "cached_checkpoint", "image_weights_key", "exported_key", "KEY_ENV"]
