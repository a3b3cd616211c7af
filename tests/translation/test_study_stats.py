"""The study's statistics against a brute-force computation with sacrebleu on fixed hypotheses."""

import random
import statistics

import numpy as np
import pytest
import sacrebleu

from stk_nmt.translation.study import stats as study_stats
from stk_nmt.translation.study.systems import parse_system
from stk_nmt.translation.study.tokens import is_punctuation, parse_train_log

WORDS = "the cat sat on a mat with one dog and two birds near our house today".split()


def fixed_files(n_sentences=25, n_seeds=3):
    """References and, per seed, a better and a worse system (word drops/substitutions)."""
    rng = random.Random(7)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(n_sentences)]

    def noisy(p):
        out = []
        for ref in refs:
            words = [w if rng.random() > p else rng.choice(WORDS) for w in ref.split()]
            out.append(" ".join(words))
        return out

    return refs, [noisy(0.2) for _ in range(n_seeds)], [noisy(0.35) for _ in range(n_seeds)]


@pytest.mark.parametrize("metric", ["BLEU", "chrF"])
def test_seed_sentence_bootstrap_matches_brute_force(metric):
    refs, good, bad = fixed_files()
    n_samples = 40
    result = study_stats.seed_sentence_bootstrap(good, bad, refs, metric, n_samples=n_samples, seed=3)
    scorer = sacrebleu.metrics.BLEU() if metric == "BLEU" else sacrebleu.metrics.CHRF()

    def corpus(hyps, refs_):
        return scorer.corpus_score(hyps, [refs_]).score

    observed = np.mean([corpus(g, refs) - corpus(b, refs) for g, b in zip(good, bad)])
    assert result.delta == pytest.approx(observed, abs=1e-9)
    # Re-materialise every bootstrap sample as text and score it with sacrebleu's corpus_score.
    seed_idx, sent_idx = study_stats.draws(len(good), len(refs), n_samples, seed=3)
    assert seed_idx.shape == (n_samples, 3) and sent_idx.shape == (n_samples, len(refs))
    deltas = []
    for b in range(n_samples):
        r = [refs[i] for i in sent_idx[b]]
        per_seed = [corpus([good[s][i] for i in sent_idx[b]], r) - corpus([bad[s][i] for i in sent_idx[b]], r)
                    for s in range(3)]
        deltas.append(np.mean([per_seed[s] for s in seed_idx[b]]))
    deltas = np.array(deltas)
    p = (1 + sum(abs(d - deltas.mean()) >= abs(observed) for d in deltas)) / (n_samples + 1)
    assert result.p_value == pytest.approx(p)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])))
    assert result.delta > 0 and result.p_value < 0.05


def test_sentence_sampling_se_is_the_spread_of_d_over_resampled_sentences():
    refs, good, bad = fixed_files(n_sentences=20, n_seeds=2)
    se = study_stats.sentence_sampling_se(good, bad, refs, "BLEU", n_samples=30, seed=5)
    scorer = sacrebleu.metrics.BLEU()
    _, sent_idx = study_stats.draws(1, len(refs), 30, seed=5)
    for s in range(2):  # each resample as text, scored by sacrebleu's corpus_score
        d = [scorer.corpus_score([good[s][i] for i in row], [[refs[i] for i in row]]).score
             - scorer.corpus_score([bad[s][i] for i in row], [[refs[i] for i in row]]).score for row in sent_idx]
        assert se[s] == pytest.approx(statistics.stdev(d), rel=1e-9)
    with pytest.raises(ValueError, match="n_samples must be >= 2, got 1"):
        study_stats.sentence_sampling_se(good, bad, refs, n_samples=1)


def test_seed_spread_is_not_a_gain():
    refs, good, bad = fixed_files(n_seeds=2)
    # One seed much better, the other much worse: the mean difference is small against the spread.
    result = study_stats.seed_sentence_bootstrap([good[0], bad[1]], [bad[0], good[1]], refs, "BLEU",
                                                 n_samples=200, seed=1)
    assert result.p_value > 0.05
    assert result.ci_low < 0 < result.ci_high


def test_seed_test_is_scipys_paired_t_test_over_seeds():
    from scipy import stats as scipy_stats

    system, baseline = [24.1, 25.3, 23.8, 24.9, 25.0], [23.5, 25.0, 23.9, 24.1, 24.2]
    test = study_stats.seed_test([a - b for a, b in zip(system, baseline)])
    reference = scipy_stats.ttest_rel(system, baseline)
    assert test["p"] == pytest.approx(reference.pvalue) and test["t"] == pytest.approx(reference.statistic)
    assert test["n"] == 5 and test["df"] == 4 and test["sign_flip_min_p"] == pytest.approx(0.0625)
    # One seed: no spread, no p, untested.
    assert study_stats.seed_test([0.4])["p"] is None


def test_holm_verdicts_over_the_whole_family():
    from scipy import stats as scipy_stats

    tests = [{"p": 0.01, "mean": 0.5, "sd": 0.2, "n": 5}, {"p": 0.04, "mean": -0.3, "sd": 0.2, "n": 5},
             {"p": 0.03, "mean": 0.1, "sd": 0.4, "n": 5}, {"p": None, "mean": 0.2, "sd": None, "n": 1}]
    assert study_stats.holm_verdicts(tests) == 3
    # Holm by hand: sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04).
    assert [t["holm_p"] for t in tests[:3]] == pytest.approx([0.03, 0.06, 0.06])
    assert [t["verdict"] for t in tests] == ["gain", "no significant difference", "no significant difference",
                                             "untested (fewer than 2 matched seeds)"]
    # The detectable difference has 80% power in the two-sided t-test (noncentral t, by hand).
    for key, alpha in (("at_alpha", 0.05), ("at_alpha_over_m", 0.05 / 3)):
        d = tests[2]["detectable"][key]
        nc, c = d / (0.4 / 5 ** 0.5), scipy_stats.t.ppf(1 - alpha / 2, 4)
        assert scipy_stats.nct.sf(c, 4, nc) + scipy_stats.nct.cdf(-c, 4, nc) == pytest.approx(0.8, abs=1e-6)
    assert tests[2]["detectable"]["at_alpha_over_m"] > tests[2]["detectable"]["at_alpha"]


def test_mean_std_and_errors():
    assert study_stats.mean_std([30.0, 31.5, 29.0]) == pytest.approx(
        (statistics.mean([30.0, 31.5, 29.0]), statistics.stdev([30.0, 31.5, 29.0])))
    assert study_stats.mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="same seeds"):
        study_stats.seed_sentence_bootstrap([["a"]], [], ["a"])
    with pytest.raises(ValueError, match="hypothesis count 1 != reference count 2"):
        study_stats.seed_sentence_bootstrap([["a"]], [["a"]], ["a", "b"])


def test_system_specs():
    base = parse_system("baseline")
    assert base.criterion_args(0.1, ["--stk-delta", "0.05"]) == [
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"]
    stk = parse_system("stk:0.9,--stk-lam-lr=0.5")
    assert stk.criterion_args(0.1, ["--stk-delta", "0.05"]) == [
        "--criterion", "stk", "--label-smoothing", "0.1", "--stk-aggregate", "stk", "--stk-k-ratio", "0.9",
        "--stk-delta", "0.05", "--stk-lam-lr", "0.5"]
    assert stk.id == "stk-0.9_--stk-lam-lr=0.5" and parse_system("atk:0.8").label == "atk k/n=0.8"
    maximum = parse_system("maximum,--stk-lam-lr=0.5")
    assert maximum.criterion_args(0.1, []) == ["--criterion", "stk", "--label-smoothing", "0.1", "--stk-aggregate",
                                               "maximum", "--stk-lam-lr", "0.5"]
    assert maximum.k_ratio is None and parse_system("average").label == "average"
    for bad, message in (("stk", "stk needs a k ratio, as in 'stk:0.96'"), ("stk:x", "not a number"),
                         ("stk:1.5", r"in \(0, 1\]"), ("stk:0.9,delta=1", "must look like --stk-flag=value"),
                         ("maximum:0.5", "maximum takes no k; name it alone"),
                         ("lsce:0.9", "must be 'baseline' or one of 'average', 'maximum', 'atk:R', 'matk:R', 'stk:R'")):
        with pytest.raises(ValueError, match=message):
            parse_system(bad)


def test_parse_simple_train_log():
    text = (
        "2026-12-01 04:00:00 | INFO | train_inner | epoch 001:     10 / 94 loss=9.12, nll_loss=8.9, "
        "ppl=477.5, k=350.2, kth_loss=1.234, lam=1.1, wps=100, num_updates=10, lr=1e-05, gnorm=2.1\n"
        "2026-12-01 04:00:05 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 7.9 | "
        "nll_loss 7.5 | ppl 181 | wps 500 | num_updates 94\n"
        "2026-12-01 04:00:06 | INFO | train | epoch 001 | loss 9.0 | nll_loss 8.8 | num_updates 94 | wall 6\n")
    logs = parse_train_log(text)
    assert logs["train_inner"] == [{"loss": 9.12, "nll_loss": 8.9, "ppl": 477.5, "k": 350.2, "kth_loss": 1.234,
                                    "lam": 1.1, "wps": 100, "num_updates": 10, "lr": 1e-05, "gnorm": 2.1}]
    assert logs["valid"] == [{"epoch": 1, "loss": 7.9, "nll_loss": 7.5, "ppl": 181, "wps": 500, "num_updates": 94}]
    assert logs["train"] == [{"epoch": 1, "loss": 9.0, "nll_loss": 8.8, "num_updates": 94, "wall": 6}]


def test_punctuation_subwords():
    assert is_punctuation("\u2581.") and is_punctuation("!?") and is_punctuation("«")
    assert not is_punctuation("\u2581") and not is_punctuation("a.") and not is_punctuation("\u2581le")


def test_a_no_difference_verdict_says_how_many_seeds_the_papers_gains_need():
    from scipy import stats as scipy_stats

    from stk_nmt.translation.study.render import describe_test

    tests = [{"p": 0.4, "mean": 0.1, "sd": 0.5, "n": 5}, {"p": 0.3, "mean": -0.2, "sd": 0.5, "n": 5}]
    study_stats.holm_verdicts(tests)
    text = describe_test(tests[0], "BLEU")
    seeds = {corpus: s for corpus, _, s in study_stats.seeds_for_paper_gains(tests[0], 0.05 / 2)}
    # Power by hand (noncentral t) at alpha / m = 0.025: enough at that many seeds, not at one fewer.
    for corpus, gain in study_stats.PAPER_BLEU_GAINS:
        n = seeds[corpus]
        power = [scipy_stats.nct.sf(scipy_stats.t.ppf(1 - 0.0125, j - 1), j - 1, gain / (0.5 / j ** 0.5)) for j in (n - 1, n)]
        assert power[0] < 0.8 <= power[1] + 1e-12
        assert f"{n} seeds for +{gain:.2f} BLEU ({corpus})" in text
    assert "80% power at alpha = 0.05/2 against the paper's gains needs" in text
    assert "the paper's gains" not in describe_test(tests[0], "chrF")


def test_a_variant_is_contrasted_with_its_plain_system():
    from stk_nmt.translation.study.presets import STUDY_SYSTEMS
    from stk_nmt.translation.study.systems import reference_of

    systems = list(STUDY_SYSTEMS)
    references = {spec: getattr(reference_of(parse_system(spec), systems), "spec", None) for spec in systems}
    assert references == {"baseline": None, "stk:0.96": None, "atk:0.96": None,
                          "stk:0.96,--stk-delta=0.1": "stk:0.96", "stk:0.96,--stk-always-average=eos": "stk:0.96"}
    assert reference_of(parse_system("stk:0.9,--stk-delta=0.1"), systems) is None  # no stk:0.9 in the study
    assert reference_of(parse_system("atk:0.96,--stk-k=5"), systems).spec == "atk:0.96"


def test_contrasts_are_paired_t_tests_in_holms_family_and_on_the_page():
    """Hand-made runs: a variant's contrast with its plain system is scipy's paired t-test over the
    matched seeds of the per-seed differences, and it joins the baseline comparisons in Holm's family."""
    from scipy import stats as scipy_stats

    from stk_nmt.translation.study.render import apply_holm, system_verdicts
    from stk_nmt.translation.study.report import seed_comparison

    bleu = {"baseline": [30.0, 31.0, 30.5], "stk:0.96": [30.6, 31.3, 31.4], "stk:0.96,--stk-delta=0.1": [28.1, 29.5, 28.0]}
    runs = [{"system": spec, "seed": seed + 1, "bleu": b, "chrf": 50 + b / 2, "length_ratio": 0.9 + b / 1000}
            for spec, values in bleu.items() for seed, b in enumerate(values)]
    variant, plain = bleu["stk:0.96,--stk-delta=0.1"], bleu["stk:0.96"]
    contrast = seed_comparison(runs, "stk:0.96,--stk-delta=0.1", "stk:0.96", [1, 2, 3])
    t = scipy_stats.ttest_rel(variant, plain)
    assert contrast["seed_test"]["BLEU"]["p"] == pytest.approx(t.pvalue, rel=1e-9)
    assert contrast["seed_test"]["BLEU"]["differences"] == pytest.approx([v - p for v, p in zip(variant, plain)])
    assert contrast["seed_test"]["chrF"]["mean"] == pytest.approx(np.mean(variant) / 2 - np.mean(plain) / 2)

    systems = {"baseline": {"label": "baseline (lsce)"}}
    for spec in ("stk:0.96", "stk:0.96,--stk-delta=0.1"):
        systems[spec] = {"label": parse_system(spec).label, **seed_comparison(runs, spec, "baseline", [1, 2, 3])}
    systems["stk:0.96,--stk-delta=0.1"]["contrast"] = {"reference": "stk:0.96", "reference_label": "stk k/n=0.96",
                                                      "matched_seeds": [1, 2, 3], **contrast}
    assert apply_holm([{"systems": systems}]) == 6  # 2 systems x 2 metrics + 1 contrast x 2 metrics
    family = [systems[s]["seed_test"][m]["p"] for s in ("stk:0.96", "stk:0.96,--stk-delta=0.1") for m in ("BLEU", "chrF")]
    family += [contrast["seed_test"][m]["p"] for m in ("BLEU", "chrF")]
    by_hand = sorted(family)
    adjusted = np.maximum.accumulate([min(1.0, (6 - i) * p) for i, p in enumerate(by_hand)])
    assert contrast["seed_test"]["BLEU"]["holm_p"] == pytest.approx(adjusted[by_hand.index(contrast["seed_test"]["BLEU"]["p"])])
    lines = system_verdicts({"systems": systems})
    assert len(lines) == 3
    assert lines[2].startswith("stk k/n=0.96 --stk-delta 0.1 against stk k/n=0.96 (not the baseline): BLEU -2.57 BLEU")


def test_the_pages_opening_describes_the_studies_it_renders():
    """Systems, validation points and the data paragraph come from the studies, not from fixed text."""
    from stk_nmt.translation.study.render import intro

    def study(systems, valid_updates, catalogs=None):
        runs = [{"log": {"valid": [{"num_updates": u} for u in valid_updates]}}]
        return {"config": {"systems": systems}, "runs": runs, "corpus": {"catalogs": catalogs} if catalogs else {}}

    text = intro([study(["baseline", "stk:0.9,--stk-lam-lr=0.5"], [300, 600, 900])])
    assert "The systems: the baseline (`label_smoothed_cross_entropy`); stk k/n=0.9 --stk-lam-lr 0.5." in text
    assert "the validation curve (every 300 updates)" in text and "gettext" not in text
    text = intro([study(["baseline", "stk:0.96,--stk-delta=0.1"], [200, 500], catalogs={"catalogs": []})])
    assert "ST_k at 0.96 with delta = 0.1 (the paper's Table 8)" in text
    assert "the validation curve (at updates 200, 500)" in text and "gettext catalogs" in text


def test_the_machine_sentence_names_torchs_kernels_when_recorded():
    from stk_nmt.translation.study.render import _wall_clock

    machine = {"cpu": "Some CPU", "cores": 2, "system": "Linux", "load_average": [1.0, 1, 1]}
    runs = [{"seconds": 1800.0, "machine": machine, "load_average_end": [2.0, 1, 1]},
            {"seconds": 1200.0, "machine": {**machine, "torch": "2.13.0", "cpu_capability": "AVX2"},
             "load_average_end": [1.5, 1, 1]}]
    text = _wall_clock(runs)
    assert text.startswith("0.8 h of run time in all (25 min per run on average)")
    # One host, named once; the kernels as the one run that recorded them says.
    assert text.count("Some CPU") == 1
    assert ("on Some CPU (2 logical cores), Linux (2 runs; torch 2.13.0 with AVX2 kernels in 1, "
            "not recorded by 1)") in text
    assert text.endswith("load average at the starts and ends of the runs 1.0 to 2.0")

    every_run_recorded = _wall_clock(runs[1:] * 2)
    assert "on Some CPU (2 logical cores), Linux (2 runs; torch 2.13.0 with AVX2 kernels)" in every_run_recorded


def test_the_machine_sentence_numbers_the_hosts_and_names_seeds_split_across_them():
    """Matched seeds share data order and initial weights; on two hosts their runs may also round
    differently, so the page says which seeds' runs ran on more than one host, from the records."""
    from stk_nmt.translation.study.render import _wall_clock

    a = {"cpu": "Some CPU", "cores": 2, "system": "Linux-a", "load_average": [1.0, 1, 1], "torch": "2.13.0",
         "cpu_capability": "AVX2"}
    b = {**a, "system": "Linux-b", "cpu_capability": "AVX512"}

    def run(label, seed, machine):
        return {"label": label, "seed": seed, "seconds": 600.0, "machine": machine}

    runs = [run("base", 1, a), run("stk", 1, a), run("base", 2, a), run("stk", 2, b), run("atk", 2, b),
            run("base", 3, b)]
    text = _wall_clock(runs)
    assert ("on host 1, Some CPU (2 logical cores), Linux-a (3 runs; torch 2.13.0 with AVX2 kernels); "
            "host 2, Some CPU (2 logical cores), Linux-b (3 runs; torch 2.13.0 with AVX512 kernels)") in text
    assert text.endswith("; seed 2's runs ran on 2 hosts (host 1: base; host 2: stk, atk), so its matched "
                         "comparisons may also differ in rounding")
    # One host: no numbers, no split.
    one = _wall_clock([run("base", 1, a), run("stk", 1, a)])
    assert "on Some CPU (2 logical cores), Linux-a (2 runs; torch 2.13.0 with AVX2 kernels)" in one
    assert "host 1" not in one and "ran on" not in one


def test_a_rerun_of_the_same_seed_is_set_beside_the_grids_run_with_its_differences():
    """The same system and seed trained again (same run key) on another host: the page gives both runs
    and the differences, computed from the two records, and says what differed."""
    from stk_nmt.translation.study.render import rerun_section

    a = {"cpu": "CPU A", "cores": 2, "system": "Linux-a", "torch": "2.13.0", "cpu_capability": "AVX512",
         "load_average": [1.0, 1, 1]}
    b = {**a, "cpu": "CPU B"}
    code_a = {"stk_nmt": "0.1.0", "source_sha256": "a" * 16, "commit": "1111111111aa", "modified": False}
    code_b = {**code_a, "source_sha256": "b" * 16, "commit": "2222222222bb"}

    def result(bleu, chrf, ratio, nll, machine, code, key="k"):
        return {"system": "baseline", "label": "baseline (lsce)", "seed": 4, "bleu": bleu, "chrf": chrf,
                "length_ratio": ratio, "machine": machine, "code": code, "key": key,
                "log": {"valid": [{"num_updates": 400.0, "nll_loss": 3.6}, {"num_updates": 800.0, "nll_loss": nll}]}}

    study = {"runs": [result(35.85, 54.85, 0.948, 2.526, a, code_a)],
             "reruns": [{**result(36.39, 55.55, 1.004, 2.525, b, code_b), "rerun": 1}]}
    text = "\n".join(rerun_section(study, "##"))
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| baseline")]
    assert rows == [["baseline (lsce)", "4", "grid", "CPU A (2 logical cores), Linux-a, AVX512", "35.85", "54.85",
                     "0.948", "2.526"],
                    ["baseline (lsce)", "4", "rerun 1", "CPU B (2 logical cores), Linux-a, AVX512", "36.39", "55.55",
                     "1.004", "2.525"]]
    # Differences by hand: 36.39 - 35.85, 55.55 - 54.85, 1.004 - 0.948, 2.525 - 2.526.
    assert ("baseline (lsce), seed 4, rerun 1: BLEU +0.54, chrF +0.70, hyp/ref length +0.056, validation nll "
            "at update 800 -0.001 bits/token") in text
    assert "same run key" in text and "another host" in text
    assert "test translations" not in text  # not compared (no count in the record): nothing said
    assert "OMP_NUM_THREADS" not in text  # neither run records it: nothing to tell apart
    study["reruns"][0]["machine"] = {**b, "omp_threads": "2"}
    assert "OMP_NUM_THREADS 2 (the grid's run: unset)" in "\n".join(rerun_section(study, "##"))
    study["reruns"][0]["translations_differing"] = [1337, 1722]
    assert "; 1337 of its 1722 test translations differ from the grid run's." in "\n".join(rerun_section(study, "##"))
    study["reruns"][0]["translations_differing"] = [0, 1722]
    assert "; its 1722 test translations are the grid run's, line for line." in "\n".join(rerun_section(study, "##"))
    assert ("another host, package source `bbbbbbbbbbbbbbbb` (commit `2222222222`) (the grid's run: package source "
            "`aaaaaaaaaaaaaaaa` (commit `1111111111`)).") in text
    assert "Command:" not in text  # a study without a grid preset: no rerun command to name
    study["config"] = {"preset": "catalogs", "name": "fr", "command": "python -m stk_nmt.translation.study grid "
                       "--preset catalogs --data-root d --work-root w --records r --pairs fr es"}
    assert ("Command: `python -m stk_nmt.translation.study rerun --preset catalogs --data-root d --work-root w "
            "--records r --pair fr --system baseline --seed 4`.") in "\n".join(rerun_section(study, "##"))
    # Same host, same code, another key: said so, not passed off as a rerun of the same settings.
    other = {**result(36.0, 55.0, 0.95, 2.5, a, code_a, key="other"), "rerun": 1}
    text = "\n".join(rerun_section({"runs": study["runs"], "reruns": [other]}, "##"))
    assert "the same host" in text and "another run key" in text and "package source" not in text.split("rerun 1:")[1]
    assert rerun_section({"runs": study["runs"], "reruns": []}, "##") == []


def test_the_budget_names_the_code_the_runs_record():
    from stk_nmt.translation.study.render import _code_sentence

    a = {"stk_nmt": "0.1.0", "source_sha256": "a" * 16, "commit": "1234567890abc", "modified": False}
    b = {**a, "source_sha256": "b" * 16, "commit": None, "modified": None}
    assert _code_sentence([{"code": a}, {"code": a}]) == \
        "Every run records the same code: package source `aaaaaaaaaaaaaaaa` (commit `1234567890`) (2 runs)."
    assert _code_sentence([{"code": a}, {"code": b}, {}]) == (
        "The runs record the code the grid ran: package source `aaaaaaaaaaaaaaaa` (commit `1234567890`) (1 run); "
        "package source `bbbbbbbbbbbbbbbb` (1 run); 1 run does not record it.")
    assert _code_sentence([{}, {}]) == "The run records do not name the code that trained them."


def test_the_seed_plan_uses_the_family_of_the_finished_grid_and_the_recorded_run_times():
    """Hand-made: two pairs of the study's five systems, two matched seeds each. The plan tests at
    alpha / m with m the finished grid's family (2 pairs x 6 comparisons x 2 metrics = 24, not the 4
    tested now) and the seeds come from scipy's noncentral t, recomputed here."""
    from scipy import stats as scipy_stats

    from stk_nmt.translation.study.presets import STUDY_SYSTEMS
    from stk_nmt.translation.study.render import seed_plan
    from stk_nmt.translation.study.report import seed_comparison

    def study(name, stk_bleu, atk_bleu):
        seeds = list(range(1, len(stk_bleu) + 1))
        bleu = {"baseline": [30.0, 31.0][:len(seeds)], "stk:0.96": stk_bleu, "atk:0.96": atk_bleu}
        runs = [{"system": spec, "seed": i + 1, "bleu": b, "chrf": 50.0 + b, "length_ratio": 0.9, "seconds": 600.0}
                for spec, values in bleu.items() for i, b in enumerate(values)]
        systems = {"baseline": {"label": "baseline (lsce)"}}
        for spec in ("stk:0.96", "atk:0.96"):
            systems[spec] = {"label": parse_system(spec).label, **seed_comparison(runs, spec, "baseline", seeds)}
        config = {"name": name, "systems": list(STUDY_SYSTEMS), "seeds": [1, 2], "planned_seeds": [1, 2, 3, 4, 5]}
        return {"config": config, "systems": systems, "runs": runs}

    assert seed_plan([study("fr", [30.0], [31.0])]) is None  # one matched seed: nothing to plan from
    studies = [study("fr", [30.5, 31.3], [30.2, 31.0]), study("es", [30.9, 31.1], [29.0, 31.0])]
    studies[1]["systems"]["stk:0.96"]["sentence_sampling_se"] = {"BLEU": [0.3, 0.4]}
    text = seed_plan(studies)
    m = 24
    assert f"holds {m} comparisons, and its strictest step tests at alpha = 0.05/{m}" in text

    def by_hand(sd, m=m):  # the fewest seeds whose t-test has 80% power against +0.53 at alpha / m
        j = 2
        while scipy_stats.nct.sf(scipy_stats.t.ppf(1 - 0.05 / m / 2, j - 1), j - 1, 0.53 / (sd / j ** 0.5)) < 0.8:
            j += 1
        return j

    # Per pair, the comparisons' variances pooled (weights n - 1 = 1 each).
    sd_fr = np.sqrt((np.var([0.5, 0.3], ddof=1) + np.var([0.2, 0.0], ddof=1)) / 2)
    sd_es = np.sqrt((np.var([0.9, 0.1], ddof=1) + np.var([-1.0, 0.0], ddof=1)) / 2)
    n_fr, n_es = by_hand(sd_fr), by_hand(sd_es)
    assert (f"fr: its 2 tested comparisons (stk k/n=0.96 vs the baseline: sd 0.14 over 2 seeds; atk k/n=0.96 vs "
            f"the baseline: sd 0.14 over 2 seeds) pool to sd {sd_fr:.2f} (2 degrees of freedom; they share runs, so "
            f"this is rough), and a comparison with that spread needs {n_fr} seeds; es:") in text
    assert (f"pool to sd {sd_es:.2f} (2 degrees of freedom; they share runs, so this is rough), and a "
            f"comparison with that spread needs {n_es} seeds;") in text
    assert "The grid plans 5 seeds per system." in text
    # es's test set: sampling variance (0.09 + 0.16) / 2 of the pooled variance, training the rest; 4x sentences.
    sampling = (0.3 ** 2 + 0.4 ** 2) / 2
    larger = ((sd_es ** 2 - sampling) + sampling / 4) ** 0.5
    assert (f"the test set's sentence sampling accounts for {sampling / sd_es ** 2:.0%} of that variance (paired "
            f"sentence bootstrap per seed: SE {sampling ** 0.5:.2f} BLEU), the rest comes from training (the seed, "
            f"and rounding where a seed's runs ran on different hosts): with a test set 4 times larger the sd would be {larger:.2f} and {by_hand(larger)} seeds would do.") in text
    runs = (n_fr + n_es) * 5  # every system of each pair at its seeds
    assert (f"Those seeds for every system of these pairs are {runs} runs, about {runs * 600 / 3600:.0f} h at the "
            f"10 min a run has taken on average in these records ({(runs - 12) * 600 / 3600:.0f} h beyond the "
            f"12 runs finished)") in text
    assert text.count("sentence sampling") == 1  # fr records no sampling SE

    # A spread below what the test set's sampling alone gives a difference: the plan takes the sampling SE.
    one = study("it", [30.5, 31.3], [30.0, 31.0])
    del one["systems"]["atk:0.96"]
    one["systems"]["stk:0.96"]["sentence_sampling_se"] = {"BLEU": [1.0, 1.0]}
    text = seed_plan([one])
    assert (f"it: its one tested comparison (stk k/n=0.96 vs the baseline: sd {np.std([0.5, 0.3], ddof=1):.2f} over 2 "
            f"seeds); that is below the spread the test set's sentence sampling alone gives a difference (paired "
            f"sentence bootstrap per seed: SE 1.00 BLEU), so the plan takes that SE: a comparison needs "
            f"{by_hand(1.0, m=12)} seeds, and with a test set 4 times larger at least {by_hand(0.5, m=12)}.") in text


def _hand_study(name, bleu, planned, length=None):
    """A study dict from hand-made per-seed BLEU per system (chrF = 50 + BLEU / 2), its baseline
    comparisons and the variants' contrasts with plain stk, as report.py builds them."""
    from stk_nmt.translation.study.report import seed_comparison
    from stk_nmt.translation.study.stats import mean_std

    length = length or {}
    runs = [{"system": spec, "seed": i + 1, "bleu": b, "chrf": 50 + b / 2,
             "length_ratio": length.get(spec, [0.9] * len(values))[i]}
            for spec, values in bleu.items() for i, b in enumerate(values)]
    systems = {}
    for spec in bleu:
        own = [r for r in runs if r["system"] == spec]
        entry = {"label": "baseline (lsce)" if spec == "baseline" else parse_system(spec).label,
                 "length_ratio": dict(zip(("mean", "std"), mean_std([r["length_ratio"] for r in own])))}
        seeds = [r["seed"] for r in own]
        if spec != "baseline":
            entry.update(seed_comparison(runs, spec, "baseline", seeds))
        if "--" in spec:
            entry["contrast"] = {"reference": "stk:0.96", "reference_label": "stk k/n=0.96", "matched_seeds": seeds,
                                 **seed_comparison(runs, spec, "stk:0.96", seeds)}
        systems[spec] = entry
    return {"config": {"name": name}, "systems": systems, "runs": runs, "planned_runs": planned}


def test_adding_comparisons_to_holms_family_never_lowers_an_adjusted_p():
    """What the status line relies on when some pairs are complete and others still run."""
    from stk_nmt.stats import holm

    rng = np.random.default_rng(3)
    for _ in range(200):
        family = rng.uniform(0, 0.2, size=rng.integers(1, 12)).tolist()
        grown = holm(family + rng.uniform(0, 1, size=rng.integers(1, 12)).tolist())
        assert all(g >= a - 1e-12 for g, a in zip(grown, holm(family)))


def test_the_status_names_the_complete_pairs_and_what_holm_can_still_change():
    from stk_nmt.translation.study.render import apply_holm, status_line

    bleu = {"baseline": [30.0, 31.0, 30.5], "stk:0.96": [30.6, 31.3, 31.4]}
    fr, es = _hand_study("fr", bleu, planned=6), _hand_study("es", bleu, planned=6)
    it = {"config": {"name": "it"}, "systems": {}, "runs": [], "planned_runs": 6}
    apply_holm([fr, es, it])
    text = status_line([fr, es, it])
    assert text.startswith("**Status: in progress.** 12 of 18 planned runs are finished (fr 6 of 6, es 6 of 6, "
                           "it 0 of 6)")
    assert ("fr and es are complete: every planned run finished. The other pairs' comparisons can only raise "
            "Holm-adjusted p values when they join the family, so no \"no significant difference\" on fr and es "
            "can become a gain or a loss.") in text
    assert "it: its verdicts cover the finished runs only" in text
    # A complete pair with a significant result: that one can still lose its significance.
    strong = _hand_study("fr", {"baseline": [30.0, 31.0, 30.5, 30.2], "stk:0.96": [32.0, 33.05, 32.5, 32.2]}, planned=8)
    apply_holm([strong, it])
    assert strong["systems"]["stk:0.96"]["seed_test"]["BLEU"]["verdict"] == "gain"
    text = status_line([strong, it])
    assert "fr is complete" in text and "its gains and losses could still lose their significance" in text
    # Nothing complete, or everything: the lines as before.
    half = _hand_study("fr", bleu, planned=10)
    apply_holm([half])
    assert "complete" not in status_line([half])
    apply_holm([fr, es])
    assert status_line([fr, es]) == "**Status: all 12 planned runs finished** (fr 6 of 6, es 6 of 6)."


def test_the_page_says_whether_always_averaging_eos_changed_quality_or_length_for_the_better():
    """The issue's rule for --stk-always-average eos: ship it if the study shows it helps quality or
    length, else say so on the page. Hand-made runs; the numbers are scipy's paired t-tests."""
    from scipy import stats as scipy_stats

    from stk_nmt.translation.study.render import always_average_finding, apply_holm

    eos = "stk:0.96,--stk-always-average=eos"
    bleu = {"baseline": [30.0, 31.0, 30.5], "stk:0.96": [30.6, 31.3, 31.4], eos: [30.1, 30.2, 31.0]}
    length = {"baseline": [0.90, 0.91, 0.92], "stk:0.96": [0.93, 0.92, 0.94], eos: [0.96, 0.96, 0.97]}
    fr = _hand_study("fr", bleu, planned=9, length=length)
    it = {"config": {"name": "it"}, "systems": {}, "runs": [], "planned_runs": 9}
    apply_holm([fr, it])
    text = always_average_finding([fr, it])
    d = [e - s for e, s in zip(bleu[eos], bleu["stk:0.96"])]
    p_len = scipy_stats.ttest_rel(length[eos], length["stk:0.96"]).pvalue
    holm_p = fr["systems"][eos]["contrast"]["seed_test"]["BLEU"]["holm_p"]
    assert text.startswith("**End-of-sentence tokens always averaged** (`--stk-always-average eos`), against plain "
                           "ST_k at the same k/n on matched seeds.")
    assert (f"fr (3 seeds): BLEU {np.mean(d):+.2f} (Holm p = {holm_p:.3f}, no significant difference)") in text
    own, plain = np.mean(length[eos]), np.mean(length["stk:0.96"])
    assert (f"hyp/ref length ratio {own:.3f} against 0.930 ({own - plain:+.3f}, paired t-test p = {p_len:.3f}, "
            f"outside Holm's family; |1 - ratio| {1 - own:.3f} against 0.070)") in text
    assert p_len < 0.05
    assert "it: not tested yet" in text
    # Outputs significantly nearer the reference length: the page says the option helped length.
    assert "So far it changed the length ratio for the better on fr" in text
    # No better length and no gain: the page says the study gives no reason to use it.
    bleu[eos] = [29.1, 30.2, 30.0]
    length[eos] = [0.93, 0.91, 0.95]
    es = _hand_study("es", bleu, planned=9, length=length)
    apply_holm([es])
    text = always_average_finding([es])
    assert ("On no pair did it change BLEU or chrF (against plain ST_k, Holm) or the length ratio (paired t-test, "
            "p < 0.05, nearer 1) for the better: this study gives no reason to use it. It stays an option, off by "
            "default (docs/criteria.md).") in text
    assert "So far" not in text  # es is complete
    assert always_average_finding([{"config": {"name": "fr"}, "systems": {}, "runs": [], "planned_runs": 3}]) is None
