"""The one registry of aggregates: every door (the fairseq criteria, the Hugging Face loss, the
vision CLI, the experiments' batched grids, the benchmarks) looks an aggregate up here by name.

An aggregate is one class in one file (kinds/average.py is the smallest example) decorated with
@register_aggregate. The five of the paper register when stk_nmt.core.aggregates is imported
(its __init__ imports kinds/); an aggregate of one's own registers when its file is imported, and
from then on every door accepts its name: the fairseq flag --stk-aggregate, the Hugging Face
argument stk_aggregate and the vision CLI's --aggregate read the names here when they check a
value, not when they are defined.

An aggregate that lives in another installed package registers in the child processes too (a
fairseq-train run, which imports only this package) through the entry-point group
"stk_nmt.aggregates": each entry names a module, imported on the registry's first lookup
(load_entry_points; not at import, when stk_nmt.core is not yet complete for the module to import
it), e.g. in that package's pyproject.toml:

    [project.entry-points."stk_nmt.aggregates"]
    top_half = "my_package.top_half"

AGGREGATES, AGGREGATE_LABELS and AGGREGATE_ARGUMENTS are live read-only views of the registry
(a tuple of the names, {name: label}, {name: arguments}), so an aggregate registered later shows
in them too.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Dict, Tuple

ENTRY_POINT_GROUP = "stk_nmt.aggregates"

_REGISTRY: Dict[str, object] = {}
_ENTRY_POINTS = {"loaded": False}


def _registry() -> Dict[str, object]:
    """The registry, once the entry points' modules are imported (on the first lookup)."""
    if not _ENTRY_POINTS["loaded"]:
        load_entry_points()
    return _REGISTRY


def register_aggregate(cls):
    """Class decorator: register one instance of the aggregate class `cls` under `cls.name`.

    Registering the same class again (a re-imported module) replaces the entry; another class under
    a name already taken is refused, so that no aggregate silently shadows another.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or not isinstance(getattr(cls, "label", None), str):
        raise ValueError(f"an aggregate class needs a non-empty str `name` and a str `label`, got {cls!r}")
    old = _REGISTRY.get(name)
    if old is not None and type(old).__qualname__ != cls.__qualname__:
        raise ValueError(f"aggregate={name!r} is already registered by {type(old).__qualname__}")
    _REGISTRY[name] = cls()
    return cls


def unregister_aggregate(name: str) -> None:
    """Remove `name` from the registry (for tests that register an aggregate of their own)."""
    get_aggregate(name)
    del _registry()[name]


def aggregate_names() -> Tuple[str, ...]:
    """The registered names, in the order they registered (the paper's five first)."""
    return tuple(_registry())


def get_aggregate(name: str):
    """The registered aggregate called `name`; a ValueError naming aggregate= and the known names."""
    try:
        return _registry()[name]
    except (KeyError, TypeError):
        raise ValueError(f"aggregate must be one of {aggregate_names()}, got aggregate={name!r}") from None


def aggregate_labels() -> Dict[str, str]:
    """{name: label}: how tables and figures name each aggregate (the paper's names)."""
    return {name: kind.label for name, kind in _registry().items()}


def load_entry_points() -> None:
    """Import the module of every entry point of the group "stk_nmt.aggregates" (its import
    registers its aggregates); a module that fails to import is named in the error. Runs once, on
    the registry's first lookup; call it again to read entry points installed since."""
    _ENTRY_POINTS["loaded"] = True  # first: a module that looks a name up while it imports does not recurse
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            importlib.import_module(entry.value.split(":")[0])
        except Exception as error:
            raise ImportError(f"the {ENTRY_POINT_GROUP} entry point {entry.name} = {entry.value!r} does not "
                              f"import: {error}") from error


class _Names(Sequence):
    """AGGREGATES: the registered names, read when used (compares equal to a tuple of them)."""

    def __getitem__(self, index):
        return aggregate_names()[index]

    def __len__(self) -> int:
        return len(_registry())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in _registry()

    def __eq__(self, other) -> bool:  # as the tuple it was: equal to a tuple of the same names
        return aggregate_names() == (tuple(other) if isinstance(other, _Names) else other)

    def __hash__(self):
        return hash(aggregate_names())

    def __repr__(self) -> str:
        return repr(aggregate_names())


class _Field(Mapping):
    """{name: one attribute of each registered aggregate}, read when used."""

    def __init__(self, attribute: str):
        self.attribute = attribute

    def __getitem__(self, name):
        if name not in _registry():
            raise KeyError(name)
        return getattr(_REGISTRY[name], self.attribute)

    def __iter__(self):
        return iter(aggregate_names())

    def __len__(self) -> int:
        return len(_registry())

    def __repr__(self) -> str:
        return repr(dict(self))


AGGREGATES = _Names()
AGGREGATE_LABELS = _Field("label")
# The arguments of build_aggregate each aggregate uses (it ignores the others); "delta" only with
# the srelu smoother. Adapters warn about an ignored argument the user gave (ignored_arguments).
AGGREGATE_ARGUMENTS = _Field("arguments")
