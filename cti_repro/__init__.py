"""cti_repro: a reproducibility package for category-to-image retrieval (ECIR 2022)."""

from cti_repro.tv_compat import install_import_hook as _install_import_hook

# Lazy: torch is imported only when something imports torchvision (open_clip, transformers).
_install_import_hook()

__version__ = "0.1.0"
