"""What a grid's cells record about the code and the host that computed them, grouped by repeat.

Shared by the tabular full-mode grid and the Gaussian sweep: the results page says, from the cells,
whether two repeats can agree to the last bit (same code, same torch CPU kernels).
"""

from ..host import code_name


def cell_provenance(cells: list[dict]) -> dict:
    """{"repeats": n, "code": groups, "cpu_capability": groups} over cells that each name their
    `repeat` (groups as repeats_by; a cell written before cells recorded `code` and `host` counts as
    not recorded)."""
    codes, capabilities = {}, {}
    for cell in cells:
        codes.setdefault(cell["repeat"], set()).add(code_name(cell.get("code")))
        capabilities.setdefault(cell["repeat"], set()).add(cell.get("host", {}).get("cpu_capability"))
    return {"repeats": len(codes), "code": repeats_by(codes), "cpu_capability": repeats_by(capabilities)}


def repeats_by(values: dict[int, set]) -> list[dict]:
    """Repeats grouped by what their cells record (a repeat whose cells disagree is its own group, its
    values joined): [{"value": ..., "repeats": "0-12, 15"}], unrecorded (None) last."""
    groups = {}
    for repeat, found in values.items():
        known = sorted(str(v) for v in found if v is not None)
        value = "; ".join(known + (["not recorded by some of its cells"] if None in found else [])) if known else None
        groups.setdefault(value, []).append(repeat)
    return [{"value": value, "repeats": repeat_ranges(repeats), "count": len(repeats)}
            for value, repeats in sorted(groups.items(), key=lambda item: (item[0] is None, min(item[1])))]


def repeat_ranges(repeats: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    spans = []
    for r in sorted(repeats):
        if spans and r == spans[-1][1] + 1:
            spans[-1][1] = r
        else:
            spans.append([r, r])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
