"""README's Layout names every folder and top-level module of stk_nmt, and every folder the sdist ships."""

import re
from pathlib import Path

import stk_nmt

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(stk_nmt.__file__).resolve().parent


def layout() -> str:
    """The Layout section's map: from its heading to "Where new code goes"."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Layout\n", 1)[1]
    return section.split("\n## ", 1)[0].split("Where new code goes", 1)[0]


def named(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) is not None


def test_every_package_folder_and_top_level_module_is_on_the_map():
    text = layout()
    folders = sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")
    modules = sorted(PACKAGE.glob("*.py"))
    missing = [f"{p.relative_to(PACKAGE.parent)}/" for p in folders if not named(text, p.name + "/")]
    missing += [str(p.relative_to(PACKAGE.parent)) for p in modules if not named(text, p.name)]
    assert not missing, f"README's Layout does not name {missing}"


def test_every_folder_the_sdist_ships_is_on_the_map():
    grafted = re.findall(r"^graft (\S+)$", (REPO / "MANIFEST.in").read_text(encoding="utf-8"), re.M)
    assert "tests" in grafted  # the manifest was read
    missing = [name for name in grafted if not named(layout(), name + "/")]
    assert not missing, f"README's Layout does not name {missing}"
