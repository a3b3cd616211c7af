"""What a record says about the code and the machine that computed it (stk_nmt/host.py)."""

import hashlib
import os
import subprocess
from pathlib import Path

import stk_nmt
from stk_nmt.host import describe_code
from stk_nmt.experiments.provenance import repeat_ranges, repeats_by
from stk_nmt.experiments.report import provenance_text

PACKAGE = Path(stk_nmt.__file__).parent


def test_the_code_is_named_by_a_digest_of_the_package_source_and_by_its_commit():
    # Independent walk of the package: os.walk, paths sorted as strings.
    files = sorted(os.path.relpath(os.path.join(d, f), PACKAGE).replace(os.sep, "/")
                   for d, _, names in os.walk(PACKAGE) for f in names if f.endswith(".py"))
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + (PACKAGE / name).read_bytes() + b"\0"
                                     for name in files)).hexdigest()
    code = describe_code()
    assert code["source_sha256"] == digest[:16] and code["stk_nmt"] == stk_nmt.__version__
    try:
        head = subprocess.run(["git", "-C", str(PACKAGE), "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = head.stdout.strip() if head.returncode == 0 else None
    except FileNotFoundError:  # no git on this machine: the digest alone names the code
        commit = None
    assert code["commit"] == commit


def test_repeats_are_grouped_by_what_their_cells_record():
    assert repeat_ranges([8, 0, 1, 2, 5, 7]) == "0-2, 5, 7-8"
    groups = repeats_by({0: {None}, 1: {None}, 2: {"a"}, 3: {"a"}, 4: {"b"}, 5: {"a", None}})
    assert groups == [{"value": "a", "repeats": "2-3", "count": 2},
                      {"value": "b", "repeats": "4", "count": 1},
                      {"value": "a; not recorded by some of its cells", "repeats": "5", "count": 1},
                      {"value": None, "repeats": "0-1", "count": 2}]


def test_the_results_page_says_what_the_cells_record_about_code_and_host():
    one = provenance_text({"repeats": 3, "code": [{"value": "package source `ab`", "repeats": "0-2", "count": 3}],
                           "cpu_capability": [{"value": "AVX2", "repeats": "0-2", "count": 3}]})
    assert one.startswith("The cells of all 3 repeats record the same code, package source `ab`. `python -m")
    assert "not comparable" not in one and "The cells record torch's CPU kernels (AVX2 in repeats 0-2)." in one

    none = provenance_text({"repeats": 50, "code": [{"value": None, "repeats": "0-49", "count": 50}],
                            "cpu_capability": [{"value": None, "repeats": "0-49", "count": 50}]})
    assert none.startswith("The cells of the 50 repeats do not record the code that trained them")
    assert "the `seconds` of cells from different repeats are not comparable" in none
    assert "The cells of the 50 repeats do not record torch's CPU kernels" in none

    mixed = provenance_text({"repeats": 52, "code": [{"value": "`a`", "repeats": "50", "count": 1},
                                                     {"value": "`b`", "repeats": "51", "count": 1},
                                                     {"value": None, "repeats": "0-49", "count": 50}],
                             "cpu_capability": [{"value": "AVX2", "repeats": "50-51", "count": 2},
                                                {"value": None, "repeats": "0-49", "count": 50}]})
    assert mixed.startswith("The cells record 2 versions of the code (repeats 50: `a`; repeats 51: `b`); "
                            "the cells of repeats 0-49 do not record theirs.")
    assert "torch's CPU kernels (AVX2 in repeats 50-51); those of repeats 0-49 do not." in mixed
