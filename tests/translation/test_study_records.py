"""The study's committed records: a finished run packed once, unpacked byte for byte, nothing outside."""

import io
import json
import tarfile

import pytest

from stk_nmt.translation.study import records as study_records


class Corpus:
    root = None
    config = {"lowercase": False, "target_lang": "fr"}
    manifest = {"config": {"source_lang": "en", "target_lang": "fr"}}

    def __init__(self, root):
        self.root = root

    def references(self, split):
        return ["un", "deux"]


def finished_run(run_dir):
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"hypotheses": "hyp.test.test.fr", "bleu": 21.5}))
    (run_dir / "hyp.test.test.fr").write_text("un\ndeux\n")
    (run_dir / "checkpoint_last.pt").write_bytes(b"not committed")


def test_pack_once_and_rebuild_the_work_folder(tmp_path):
    run_dir = tmp_path / "work" / "runs" / "stk-0.96" / "seed3"
    finished_run(run_dir)
    records = tmp_path / "records"
    study_records.write_corpus_record(records, {"name": "fr", "systems": ["stk:0.96"], "seeds": [3]}, Corpus(tmp_path))
    archive = study_records.pack_run(records, "stk-0.96", 3, run_dir)
    assert archive == records / "runs" / "stk-0.96__seed3.tar.xz"
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["hyp.test.test.fr", "result.json"]  # no checkpoint
    assert study_records.pack_run(records, "stk-0.96", 3, run_dir) is None  # never rewritten

    config, corpus = study_records.unpack_study(records, tmp_path / "fresh")
    rebuilt = tmp_path / "fresh" / "runs" / "stk-0.96" / "seed3"
    for name in ("result.json", "hyp.test.test.fr"):
        assert (rebuilt / name).read_bytes() == (run_dir / name).read_bytes()
    assert config["work"] == str(tmp_path / "fresh") and config["seeds"] == [3]
    assert corpus.references("test") == ["un", "deux"] and corpus.config["target_lang"] == "fr"


def test_an_archive_member_outside_the_run_folder_is_refused(tmp_path):
    records = tmp_path / "records"
    study_records.write_corpus_record(records, {"name": "fr"}, Corpus(tmp_path))
    (records / "runs").mkdir()
    with tarfile.open(records / "runs" / "baseline__seed1.tar.xz", "w:xz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="escape"):
        study_records.unpack_study(records, tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "runs" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_a_fresh_work_folder_gets_the_recorded_runs_back_and_keeps_its_own(tmp_path):
    records = tmp_path / "records"
    for system, seed in (("baseline", 1), ("stk-0.96", 1)):
        run_dir = tmp_path / "old" / "runs" / system / f"seed{seed}"
        finished_run(run_dir)
        study_records.pack_run(records, system, seed, run_dir)
    own = tmp_path / "new" / "runs" / "baseline" / "seed1"
    own.mkdir(parents=True)
    (own / "result.json").write_text('{"mine": true}')
    restored = study_records.restore_runs(records, tmp_path / "new")
    assert restored == [tmp_path / "new" / "runs" / "stk-0.96" / "seed1"]
    assert (restored[0] / "hyp.test.test.fr").read_text() == "un\ndeux\n"
    assert json.loads((own / "result.json").read_text()) == {"mine": True}  # a finished run is not replaced
    assert study_records.restore_runs(records, tmp_path / "new") == []


def test_records_of_another_corpus_are_refused(tmp_path):
    records = tmp_path / "records"
    corpus = Corpus(tmp_path)
    corpus.manifest = {"config": {"corpus": "catalogs-fr-aaaa"}}
    study_records.write_corpus_record(records, {"name": "fr"}, corpus)
    study_records.check_same_corpus(records, corpus)  # the same corpus: accepted
    other = Corpus(tmp_path)
    other.manifest = {"config": {"corpus": "catalogs-fr-bbbb"}}
    with pytest.raises(ValueError, match="catalogs-fr-bbbb"):
        study_records.check_same_corpus(records, other)


def test_a_rerun_of_a_recorded_run_is_packed_apart_and_comes_back_with_the_records(tmp_path):
    # A rerun (same system, seed and settings) measures how far a run moves with nothing changed but
    # where it ran; it must not replace or join the grid's runs.
    records = tmp_path / "records"
    study_records.write_corpus_record(records, {"name": "fr", "systems": ["baseline"], "seeds": [4]}, Corpus(tmp_path))
    grid_run = tmp_path / "work" / "runs" / "baseline" / "seed4"
    finished_run(grid_run)
    study_records.pack_run(records, "baseline", 4, grid_run)
    assert study_records.next_rerun(records, "baseline", 4) == 1
    rerun = tmp_path / "work" / "reruns" / "baseline__seed4__r1"
    finished_run(rerun)
    archive = study_records.pack_rerun(records, "baseline", 4, 1, rerun)
    assert archive == records / "reruns" / "baseline__seed4__r1.tar.xz"
    assert study_records.pack_rerun(records, "baseline", 4, 1, rerun) is None  # never rewritten
    assert study_records.next_rerun(records, "baseline", 4) == 2 and study_records.next_rerun(records, "baseline", 5) == 1

    study_records.unpack_study(records, tmp_path / "fresh")
    assert sorted(p.name for p in (tmp_path / "fresh" / "runs").iterdir()) == ["baseline"]
    back = tmp_path / "fresh" / "reruns" / "baseline__seed4__r1"
    assert (back / "result.json").read_bytes() == (rerun / "result.json").read_bytes()
    # The same translations as the grid's run ("un\ndeux" both): 0 of 2 differ.
    assert study_records.rerun_results(tmp_path / "fresh") == [{"hypotheses": "hyp.test.test.fr", "bleu": 21.5,
                                                                "rerun": 1, "translations_differing": [0, 2]}]
    (back / "hyp.test.test.fr").write_text("un\ntrois\n")
    assert study_records.rerun_results(tmp_path / "fresh")[0]["translations_differing"] == [1, 2]
