"""A documentation page composed from several studies: their work folders, or their committed records."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from ...data.io import atomic_write_text
from ...files import read_json, write_json
from .config import planned_runs
from .progress import log
from .records import rerun_results, unpack_study
from .report import report_finished


def compose_page(studies: list[Path], out: Path, title: str, intro: str = "",
                 prepare_commands: list[str] = ()) -> str:
    """One page from several studies (finished or in progress); figures are copied to OUT's img/ folder."""
    from .render import intro as default_intro, markdown, page_conclusion

    out = Path(out)
    loaded = []
    for work in studies:
        study = read_json(Path(work) / "study.json")
        name = study["config"]["name"]
        img_dir = out.parent / "img"
        img_dir.mkdir(parents=True, exist_ok=True)
        for key, rel in study["figures"].items():
            target = img_dir / f"study-{name}-{Path(rel).name}"
            shutil.copyfile(Path(work) / rel, target)
            study["figures"][key] = str(target.relative_to(out.parent))
        study["reruns"] = rerun_results(Path(work))  # `study rerun`'s runs, set beside the grid's
        loaded.append(study)
    commands = ["## Reproduce", "", "Run each study (resumable: re-run the same command after an interruption; "
                "it keeps every finished run; the grid prepares a missing catalog corpus itself), then compose "
                "this page:", "", "```"]
    commands += list(prepare_commands) + list(dict.fromkeys(s["config"]["command"] for s in loaded))
    commands += ["python -m stk_nmt.translation.study " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["page"]
                 else "python -m stk_nmt.translation.study page --studies ... --out " + str(out), "```", ""]
    conclusion = page_conclusion(loaded)  # Holm over every comparison of the page, before the sections
    sections = [markdown(study, image_prefix="", heading="##") for study in loaded]
    text = "\n".join([f"# {title}\n", (intro or default_intro(loaded)).strip() + "\n", conclusion, *commands, *sections])
    atomic_write_text(out, text)
    log(f"wrote {out}")
    return text


def studies_from_records(records: list[Path], scratch: Path) -> list[Path]:
    """Work folders rebuilt from committed records, each reported (study.json) for compose_page."""
    works = []
    for folder in records:
        work = Path(scratch) / Path(folder).name
        if work.exists():
            shutil.rmtree(work)  # rebuilt from the records every time: nothing stale
        config, corpus = unpack_study(folder, work)
        if (work / "runs").is_dir():
            report_finished(work, corpus)
        else:  # nothing finished yet: the page still shows the study's plan and status
            write_json(work / "study.json", {
                "config": config, "corpus": {"root": str(corpus.root), "manifest": corpus.manifest,
                                             "test_sentences": len(corpus.references("test")),
                                             **({"catalogs": read_json(work / "catalogs.json")}
                                                if (work / "catalogs.json").is_file() else {})},
                "systems": {}, "runs": [], "figures": {}, "planned_runs": planned_runs(config)})
        works.append(work)
    return works
