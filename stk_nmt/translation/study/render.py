"""The study's figures (matplotlib, PNG) and markdown (tabulate) from study.json's content."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

import numpy as np
from tabulate import tabulate

from ...files import atomic_write
from ...host import code_name
from ..recipes import RECIPES
from .presets import SYSTEM_ROLES
from ...stats import ALPHA, POWER, runs_needed
from .stats import (PAPER_BLEU_GAINS, TestResult, comparisons, holm_verdicts, planned_comparisons,
                    seeds_for_paper_gains)
from .systems import parse_system


def _pm(entry: dict, key: str, digits: int = 2) -> str:
    return f"{entry[key]['mean']:.{digits}f} ± {entry[key]['std']:.{digits}f}"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def figures(study: dict, img_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir = Path(img_dir)
    name = study["config"]["name"]
    systems = study["systems"]
    out = {}
    # Score vs k ratio, mean ± std over seeds; the baseline (the plain average) sits at k/n = 1.
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, title in ((axes[0], "bleu", "BLEU"), (axes[1], "chrf", "chrF")):
        # One line per aggregate over its plain k/n systems; a system with extra flags (another delta,
        # EOS always averaged) is its own point, nudged sideways so that points at one k/n stay apart.
        variants = [e for e in systems.values() if e["aggregate"] is not None and " --" in e["label"]]
        for aggregate, marker in (("stk", "o"), ("atk", "s"), ("matk", "^")):
            points = sorted((e["k_ratio"], e[key]["mean"], e[key]["std"]) for e in systems.values()
                            if e["aggregate"] == aggregate and e not in variants)
            if points:
                x, y, err = zip(*points)
                ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=aggregate)
        for i, e in enumerate(variants, 1):
            ax.errorbar([e["k_ratio"] + 0.004 * i], [e[key]["mean"]], yerr=[e[key]["std"]], marker="v", capsize=3,
                        linestyle="none", label=e["label"])
        base = next((e for e in systems.values() if e["aggregate"] is None), None)
        if base:
            ax.errorbar([1.0], [base[key]["mean"]], yerr=[base[key]["std"]], marker="D", color="black",
                        capsize=3, label="baseline (average)")
            ax.axhspan(base[key]["mean"] - base[key]["std"], base[key]["mean"] + base[key]["std"],
                       color="grey", alpha=0.15)
        ax.set_xlabel("k/n")
        ax.set_ylabel(f"test {title} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: score vs k ratio")
    out["score_vs_k"] = _save(fig, img_dir / "score_vs_k.png")
    # lam against the batch's k-th largest token loss (first seed of each lambda-form system).
    lam_systems = [spec for spec, e in systems.items() if e["aggregate"] in ("stk", "matk")]
    if lam_systems:
        fig, axes = plt.subplots(1, len(lam_systems), figsize=(3.6 * len(lam_systems), 3.2), squeeze=False)
        for ax, spec in zip(axes[0], lam_systems):
            run = next(r for r in study["runs"] if r["system"] == spec)
            inner = [r for r in run["log"]["train_inner"] if "lam" in r and "num_updates" in r]
            ax.plot([r["num_updates"] for r in inner], [r["kth_loss"] for r in inner], label="k-th largest loss")
            ax.plot([r["num_updates"] for r in inner], [r["lam"] for r in inner], label="lam")
            ax.set_title(f"{systems[spec]['label']} (seed {run['seed']})", fontsize=9)
            ax.set_xlabel("updates")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("nats (batch mean over the log interval)")
        axes[0][0].legend(fontsize=8)
        out["lam_vs_kth"] = _save(fig, img_dir / "lam_vs_kth.png")
    # Training and validation nll (bits per token; comparable across criteria, unlike their loss).
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, spec in enumerate(systems):
        color = f"C{i}"
        for run in (r for r in study["runs"] if r["system"] == spec):
            first = run["seed"] == systems[spec]["seeds"][0]
            inner = [r for r in run["log"]["train_inner"] if "nll_loss" in r]
            valid = [r for r in run["log"]["valid"] if "nll_loss" in r]
            kw = dict(color=color, alpha=0.8 if first else 0.35, label=systems[spec]["label"] if first else None)
            axes[0].plot([r["num_updates"] for r in inner], [r["nll_loss"] for r in inner], **kw)
            axes[1].plot([r["num_updates"] for r in valid], [r["nll_loss"] for r in valid], marker=".", **kw)
    for ax, title in zip(axes, ("training nll (bits/token)", "validation nll (bits/token)")):
        ax.set_xlabel("updates")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{name}: loss curves, every seed")
    out["loss_curves"] = _save(fig, img_dir / "loss_curves.png")
    return out


def _family(studies: list[dict]) -> list[dict]:
    """Every seed-level test on a page (pair x comparison x metric): Holm's family."""
    return [t for study in studies for t in comparisons(study["systems"])]


def apply_holm(studies: list[dict]) -> int:
    """Holm's adjustment and the verdicts over every comparison of the given studies; returns m."""
    return holm_verdicts(_family(studies))


def describe_test(test: dict, unit: str) -> str:
    """One comparison in words: mean difference, seeds, p, Holm p, verdict (+ what was detectable)."""
    if test["p"] is None:
        return f"{test['mean']:+.2f} {unit} on {test['n']} matched seed(s): untested (fewer than 2 matched seeds)"
    text = (f"{test['mean']:+.2f} {unit} (sd {test['sd']:.2f} over {test['n']} seeds; t-test p = {test['p']:.3f}, "
            f"Holm p = {test['holm_p']:.3f}): {test['verdict']}")
    if test["verdict"] == "no significant difference":
        d = test["detectable"]
        text += (f"; the smallest true difference this test detects with {d['power']:.0%} power is "
                 f"{d['at_alpha']:.2f} {unit} at alpha = {d['alpha']:g} and {d['at_alpha_over_m']:.2f} {unit} at "
                 f"alpha = {d['alpha']:g}/{test['family_size']}")
        if unit == "BLEU":
            alpha_m = d["alpha"] / test["family_size"]
            needed = [("more than 10,000" if s is None else str(s), gain, corpus)
                      for corpus, gain, s in seeds_for_paper_gains(test, alpha_m, d["power"])]
            text += (f"; at this seed spread, {d['power']:.0%} power at alpha = {d['alpha']:g}/{test['family_size']} "
                     f"against the paper's gains needs " + " and ".join(
                         f"{s} seeds for +{gain:.2f} BLEU ({corpus})" for s, gain, corpus in needed))
    return text


def _comparison_line(name: str, comparison: dict) -> str:
    length = comparison["length_ratio_delta"]
    return (f"{name}: BLEU {describe_test(comparison['seed_test']['BLEU'], 'BLEU')}; chrF "
            f"{describe_test(comparison['seed_test']['chrF'], 'chrF')}; hyp/ref length ratio {length['mean']:+.3f} "
            f"(per seed: {' '.join(f'{d:+.3f}' for d in length['differences'])})")


def system_verdicts(study: dict) -> list[str]:
    """Each system against the baseline, then each variant against its plain system."""
    systems = study["systems"].values()
    lines = [_comparison_line(e["label"], e) for e in systems if "seed_test" in e]
    for e in systems:
        contrast = e.get("contrast")
        if contrast and "seed_test" in contrast:
            lines.append(_comparison_line(f"{e['label']} against {contrast['reference_label']} (not the baseline)",
                                          contrast))
        elif contrast:
            lines.append(f"{e['label']} against {contrast['reference_label']} (not the baseline): no matched seed yet")
    return lines


def planned(study: dict) -> int:
    """The runs a study plans (its finished runs when the record predates the plan)."""
    return study.get("planned_runs", len(study["runs"]))


def complete(study: dict) -> bool:
    """Whether every planned run of the study has finished (and there is at least one)."""
    return bool(study["runs"]) and len(study["runs"]) >= planned(study)


def conclusion(study: dict, min_bleu: float = 20.0) -> str:
    """Where one study stands: its finished runs, the baseline's level, and the tested comparisons."""
    runs = len(study["runs"])
    if not runs:
        return f"No run has finished yet (0 of {planned(study)} planned)."
    parts = [f"{runs} of {planned(study)} planned runs finished."]
    base = study["systems"].get("baseline")
    if base:
        level = "at or above" if base["bleu"]["mean"] >= min_bleu else "below"
        n = len(base["seeds"])
        spread = (f"{base['bleu']['mean']:.2f} ± {base['bleu']['std']:.2f} BLEU over {n} seeds" if n > 1
                  else f"{base['bleu']['mean']:.2f} BLEU on its one finished seed")
        parts.append(f"The baseline reaches {spread}, {level} the {min_bleu:g} BLEU the study requires of a baseline.")
    tested = [e for e in study["systems"].values() if "seed_test" in e]
    if not tested:
        parts.append("No system has been compared with the baseline on a matched seed yet.")
        return " ".join(parts)
    contrasts = [(f"{e['label']} vs {e['contrast']['reference_label']}", e["contrast"])
                 for e in study["systems"].values() if "seed_test" in e.get("contrast", {})]
    for name in ("BLEU", "chrF"):
        verdicts = {}
        for e in tested:
            verdicts.setdefault(e["seed_test"][name]["verdict"], []).append(e["label"])
        parts.append(f"{name}: " + "; ".join(f"{v}: {', '.join(labels)}" for v, labels in verdicts.items()) + ".")
    for name in ("BLEU", "chrF") if contrasts else ():
        verdicts = {}
        for label, contrast in contrasts:
            verdicts.setdefault(contrast["seed_test"][name]["verdict"], []).append(label)
        parts.append(f"Variants against their plain system, {name}: "
                     + "; ".join(f"{v}: {', '.join(labels)}" for v, labels in verdicts.items()) + ".")
    return " ".join(parts)


def _wall_clock(runs: list[dict]) -> str:
    """Wall-clock time and machine, from the run records themselves."""
    total = sum(r["seconds"] for r in runs)
    text = f"{total / 3600:.1f} h of run time in all ({total / 60 / len(runs):.0f} min per run on average)"
    timed = [r for r in runs if r.get("started_at") and r.get("finished_at")]
    if timed:
        text += (f"; runs started from {min(r['started_at'] for r in timed)} and finished by "
                 f"{max(r['finished_at'] for r in timed)} (UTC)")
    machines = [r["machine"] for r in runs if r.get("machine")]
    if machines:
        hosts = _by_host(machines)
        names, split = [_host_runs(host, group) for host, group in hosts.items()], ""
        if len(hosts) > 1:
            names = [f"host {i}, {name}" for i, name in enumerate(names, 1)]
            split = _seeds_across_hosts(runs, list(hosts))
        loads = [m["load_average"][0] for m in machines] + [r["load_average_end"][0] for r in runs
                                                            if r.get("load_average_end")]
        text += (f", on {'; '.join(names)}; 1-minute load average at the starts and ends of the runs "
                 f"{min(loads):.1f} to {max(loads):.1f}{split}")
    return text


def _seeds_across_hosts(runs: list[dict], hosts: list[str]) -> str:
    """Matched seeds share data order and initial weights, but runs on different hosts may round
    differently (other CPUs or kernels), which loosens the pairing: name the seeds it concerns."""
    by_seed = {}
    for r in runs:
        if r.get("machine"):
            number = hosts.index(_host_name(r["machine"])) + 1
            by_seed.setdefault(r["seed"], {}).setdefault(number, []).append(r["label"])
    split = [(seed, groups) for seed, groups in sorted(by_seed.items()) if len(groups) > 1]
    return "".join(f"; seed {seed}'s runs ran on {len(groups)} hosts ("
                   + "; ".join(f"host {n}: {', '.join(labels)}" for n, labels in sorted(groups.items()))
                   + "), so its matched comparisons may also differ in rounding" for seed, groups in split)


def _code_sentence(runs: list[dict]) -> str:
    """Which code trained the runs, as their records say (records older than that field say nothing)."""
    names = Counter(code_name(r.get("code")) for r in runs)
    missing = names.pop(None, 0)
    if not names:
        return "The run records do not name the code that trained them."
    parts = [f"{name} ({n} run{'s' if n != 1 else ''})" for name, n in sorted(names.items())]
    text = ("The runs record the code the grid ran: " if len(names) > 1 or missing
            else "Every run records the same code: ")
    text += "; ".join(parts)
    return text + (f"; {missing} run{'s do' if missing != 1 else ' does'} not record it." if missing else ".")


def _host_name(machine: dict) -> str:
    return f"{machine['cpu']} ({machine['cores']} logical cores), {machine['system']}"


def _by_host(machines: list[dict]) -> dict[str, list[dict]]:
    hosts = {}
    for m in machines:
        hosts.setdefault(_host_name(m), []).append(m)
    return dict(sorted(hosts.items()))


def _host_runs(host: str, machines: list[dict]) -> str:
    """A host named once, with the torch kernels its runs recorded (older records lack them)."""
    kernels = Counter(f"torch {m['torch']} with {m['cpu_capability']} kernels"
                      for m in machines if m.get("cpu_capability"))
    missing = len(machines) - sum(kernels.values())
    count = f"{len(machines)} run{'s' if len(machines) != 1 else ''}"
    if not missing and len(kernels) == 1:
        return f"{host} ({count}; {next(iter(kernels))})"
    parts = [f"{name} in {n}" for name, n in sorted(kernels.items())]
    if missing:
        parts.append(f"not recorded by {missing}")
    return f"{host} ({count}; {', '.join(parts)})"


def _last_valid_nll(run: dict) -> tuple[int, float] | None:
    valid = [r for r in run["log"]["valid"] if "nll_loss" in r and "num_updates" in r]
    return (int(valid[-1]["num_updates"]), valid[-1]["nll_loss"]) if valid else None


def _rerun_command(config: dict | None, rerun: dict) -> str | None:
    """The `study rerun` command of a grid study's rerun, with the grid command's folders."""
    if not config or not config.get("preset"):
        return None
    words = shlex.split(config["command"])
    folders = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--data-root", "--work-root", "--records")}
    if len(folders) < 3:
        return None
    return shlex.join(["python", "-m", "stk_nmt.translation.study", "rerun", "--preset", config["preset"],
                       *(x for item in folders.items() for x in item), "--pair", config["name"],
                       "--system", rerun["system"], "--seed", str(rerun["seed"])])


def rerun_section(study: dict, heading: str = "#") -> list[str]:
    """`study rerun`'s runs beside the grid's run of the same system and seed, with the differences:
    how far a run moves when nothing changes but where (and by which package source) it ran."""
    grid_runs = {(r["system"], r["seed"]): r for r in study["runs"]}
    pairs = [(grid_runs[(r["system"], r["seed"])], r) for r in study.get("reruns", [])
             if (r["system"], r["seed"]) in grid_runs]
    if not pairs:
        return []

    def row(run, name):
        machine = run.get("machine") or {}
        host = f"{_host_name(machine)}, {machine.get('cpu_capability') or 'kernels not recorded'}" if machine else "not recorded"
        nll = _last_valid_nll(run)
        return [run["label"], run["seed"], name, host, f"{run['bleu']:.2f}", f"{run['chrf']:.2f}",
                f"{run['length_ratio']:.3f}", f"{nll[1]:.3f}" if nll else ""]

    rows, notes = [], []
    for grid_run, rerun in pairs:
        rows += [row(grid_run, "grid"), row(rerun, f"rerun {rerun['rerun']}")]
        same_host = grid_run.get("machine") and rerun.get("machine") and \
            row(grid_run, "")[3] == row(rerun, "")[3]
        what = ["the same run key (data, flags, seed, decoding)" if rerun.get("key") == grid_run.get("key")
                else "another run key (its settings differ from the grid run's)",
                "the same host" if same_host else "another host"]
        threads = [(r.get("machine") or {}).get("omp_threads") for r in (rerun, grid_run)]
        if threads[0] != threads[1]:
            what.append(f"OMP_NUM_THREADS {threads[0] or 'unset'} (the grid's run: {threads[1] or 'unset'})")
        code, grid_code = code_name(rerun.get("code")), code_name(grid_run.get("code"))
        if code != grid_code:
            what.append(f"{code or 'a package source it does not record'} (the grid's run: {grid_code or 'not recorded'})")
        nll, grid_nll = _last_valid_nll(rerun), _last_valid_nll(grid_run)
        text = (f"{rerun['label']}, seed {rerun['seed']}, rerun {rerun['rerun']}: BLEU {rerun['bleu'] - grid_run['bleu']:+.2f}, "
                f"chrF {rerun['chrf'] - grid_run['chrf']:+.2f}, hyp/ref length "
                f"{rerun['length_ratio'] - grid_run['length_ratio']:+.3f}")
        if nll and grid_nll and nll[0] == grid_nll[0]:
            text += f", validation nll at update {nll[0]} {nll[1] - grid_nll[1]:+.3f} bits/token"
        text += f" against the grid's run; trained with {', '.join(what)}"
        if rerun.get("translations_differing"):
            differing, total = rerun["translations_differing"]
            text += (f"; {differing} of its {total} test translations differ from the grid run's" if differing
                     else f"; its {total} test translations are the grid run's, line for line")
        notes.append(f"- {text}."
                     + (f" Command: `{command}`." if (command := _rerun_command(study.get("config"), rerun)) else ""))
    return [f"{heading}# The same run trained again", "",
            tabulate(rows, headers=["system", "seed", "run", "host, torch kernels", "BLEU", "chrF", "hyp/ref length",
                                    "valid nll (last validation)"], tablefmt="github", disable_numparse=True), "",
            *notes, "",
            "A rerun (`study rerun`) trains a recorded run again with the grid's settings. Matched seeds share "
            "data order and initial weights, so a difference between a run and its rerun is what rounding (another "
            "CPU, other kernels) or a change of code does by itself; the per-seed differences the tests above use "
            "contain it too. A host is named by what the runs record: CPU model, logical cores, system and torch's "
            "kernels. Reruns are not part of any test on this page.", ""]


SMOOTHER_WEIGHTS = {
    "srelu": ("SReLU's derivative 0.5 (1 + x / sqrt(x² + delta²)), x = loss − lam, which is 0.5 at lam and falls "
              "towards 0 below it but is never 0 (0.146 at lam − delta)"),
    "relu": "the hinge's derivative (MAT_k): 1 above lam, 0 below",
}


def weight_note(systems: dict) -> str:
    """How the token table's weight is computed, for the smoothers its runs recorded."""
    smoothers = sorted({m for e in systems.values() for m in e.get("tokens_below_lam", {}).get("smoothers", [])})
    parts = [SMOOTHER_WEIGHTS.get(m, f"the derivative of the {m} smoother at x = loss − lam") for m in smoothers]
    return ("A token's weight is its aggregate's gradient weight relative to the plain average's: "
            + "; ".join(parts or [SMOOTHER_WEIGHTS["srelu"]]) + ".")


def curve_table(study: dict) -> list[str]:
    """Validation nll (bits/token) at each validated update count, mean ± std over seeds, per system."""
    points = {}
    for run in study["runs"]:
        # One value per update count and run: a resumed run's log repeats the updates after its last
        # checkpoint; the later attempt (later in the log) is the one the run continued from.
        own = {int(r["num_updates"]): r["nll_loss"] for r in run["log"]["valid"] if "nll_loss" in r and "num_updates" in r}
        for update, value in own.items():
            points.setdefault(run["system"], {}).setdefault(update, []).append(value)
    updates = sorted({u for by_update in points.values() for u in by_update})
    if not updates:
        return []
    rows = []
    for spec, e in study["systems"].items():
        by_update = points.get(spec, {})
        rows.append([e["label"], *(f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"
                                   if (v := by_update.get(u)) else "" for u in updates)])
    return [tabulate(rows, headers=["system", *(f"update {u}" for u in updates)], tablefmt="github"), "",
            "Validation nll in bits per token (comparable across criteria, unlike each criterion's own loss), "
            "teacher-forced on the validation set at each validation, mean ± std over the finished seeds.", ""]


def markdown(study: dict, image_prefix: str = "", heading: str = "#") -> str:
    config, systems = study["config"], study["systems"]
    corpus = study["corpus"]
    manifest = corpus["manifest"]
    runs = study["runs"]
    lines = [f"{heading} Study `{config['name']}`: {manifest['config']['source_lang']}->"
             f"{manifest['config']['target_lang']}, corpus `{manifest['config']['corpus']}`", ""]
    recipe = RECIPES[config["recipe"]].description
    if planned(study) > len(runs):
        lines += [f"**In progress: {len(runs)} of {planned(study)} planned runs finished.** Every statistic "
                  f"below uses the finished runs only.", ""]
    preset = f"preset `{config['preset']}`, " if config.get("preset") else ""
    seeds = sorted(set(config["seeds"]) | set(config.get("planned_seeds", [])))
    lines += [
        f"**Budget.** {len(seeds)} seeds ({', '.join(map(str, seeds))}) x "
        f"{len(config['systems'])} systems; {preset}recipe `{config['recipe']}` ({recipe}), "
        f"{config['max_update']} updates per run, label smoothing {config['label_smoothing']}, extra fairseq flags "
        f"`{' '.join(config['fairseq_args']) or 'none'}`; checkpoint_last evaluated, beam {config['beam']}"
        + (f"; {_wall_clock(runs)}. {_code_sentence(runs)}" if runs else "."), "",
        f"**Data.** train/valid/test {', '.join(f'{v:,}' for v in manifest['sizes_binarized'].values())} "
        f"pairs (binarised); test {corpus['test_sentences']} sentences."]
    catalogs = corpus.get("catalogs")
    if catalogs:
        lines[-1] += (f" Built from {len(catalogs['catalogs'])} gettext catalogs in "
                      f"{catalogs['locale_dir']}/{catalogs['target_lang']}/LC_MESSAGES (digest "
                      f"`{catalogs['catalog_digest'][:16]}`), counts {catalogs['counts']}; split hashes (sha256 of "
                      f"the source side): " + ", ".join(f"{k} `{v['sha256_source'][:12]}`"
                                                         for k, v in catalogs["splits"].items()) + ".")
    lines += ["", f"**Command.** `{config['command']}`", ""]
    if not runs:
        lines += ["No run of this study has finished yet.", ""]
        return "\n".join(lines)
    lines += [f"{heading}# Scores (test set)", ""]
    rows = []
    for e in systems.values():
        t = e.get("seed_test", {})
        b, c, bs = t.get("BLEU"), t.get("chrF"), e.get("test_BLEU")
        per_seed = e.get("per_seed_bootstrap_p", {})
        rows.append([e["label"], len(e["seeds"]), _pm(e, "bleu"), _pm(e, "chrf"), _pm(e, "length_ratio", 3),
                     f"{b['mean']:+.2f}" if b else "", f"{b['p']:.3f}" if b and b["p"] is not None else "",
                     f"{b['holm_p']:.3f}" if b and b.get("holm_p") is not None else "",
                     f"{b['sign_flip_p']:.3f}" if b else "",
                     f"{c['mean']:+.2f}" if c else "", f"{c['holm_p']:.3f}" if c and c.get("holm_p") is not None else "",
                     f"{bs['p_value']:.3f}" if bs else "",
                     " ".join(f"{p['BLEU']:.3f}" for p in per_seed.values()) if per_seed else ""])
    lines.append(tabulate(rows, headers=["system", "seeds", "BLEU", "chrF", "hyp/ref length", "ΔBLEU", "t-test p",
                                         "Holm p", "sign-flip p", "ΔchrF", "Holm p chrF", "2-level bootstrap p",
                                         "per-seed bootstrap p BLEU"], tablefmt="github", disable_numparse=True))
    lines += ["", "Mean ± sample std over seeds. Δ: mean over matched seeds of the per-seed corpus-level difference "
              "system − baseline. **t-test p**: the paired t-test over seeds of those differences, the verdict's test; "
              "**Holm p**: adjusted over every comparison on the page. Secondary, not used for verdicts: the exact "
              "sign-flip p (over all 2^S sign assignments; its smallest value is 2/2^S, 0.0625 at 5 seeds); the "
              f"two-level bootstrap p ({config['bootstrap_samples']} samples resampling seeds and sentences, centred "
              "on the bootstrap mean: #{|d_b − mean d_b| ≥ |d|}; anti-conservative with few seeds); per seed, "
              "sacrebleu's paired bootstrap p of each seed against the baseline of the same seed (centred as "
              "sacrebleu does: |d_b| − mean |d_b| ≥ |d|; blind to the seed spread).", ""]
    lines += [f"{heading}# Verdicts so far", "", conclusion(study), ""]
    lines += [f"- {line}" for line in system_verdicts(study)] + [""]
    below_rows = [[e["label"], f"{t['lam']:.3f}", f"{100 * t['below_lam_fraction']:.1f}%", f"{t['mean_weight']:.3f}",
                   *(f"{100 * t['weight_below_fraction'][w]:.1f}%" for w in ("0.1", "0.01")),
                   *(f"{100 * t['share_of_below'][k]:.1f}% ({100 * t['share_of_all'][k]:.1f}%)"
                     for k in ("eos", "punct", "frequent"))]
                  for e in systems.values() if (t := e.get("tokens_below_lam")) and "mean_weight" in t]
    if below_rows:
        lines += [f"{heading}# Which target tokens fall below lam, and the weight ST_k gives them", "",
                  tabulate(below_rows, headers=["system", "final lam (nats)", "tokens below lam", "mean weight",
                                                "weight < 0.1", "weight < 0.01", "EOS", "punctuation",
                                                "50 most frequent subwords"], tablefmt="github"), "",
                  f"Each trained model's label-smoothed token losses on the first {config['analysis_sentences']} "
                  "validation sentences (teacher forcing, no dropout) against its final lam; mean over seeds. "
                  + weight_note(systems) +
                  " An always-averaged EOS token weighs 1. 'tokens below "
                  "lam' are those with weight < 0.5. The last three columns: share of the below-lam tokens that are "
                  "end-of-sentence, punctuation-only subwords and the 50 most frequent subwords, in brackets their "
                  "share among all tokens: a share above the bracket means ST_k trains those tokens least.", ""]
    curve = curve_table(study)
    if curve:
        lines += [f"{heading}# Validation curve", "", *curve]
    lines += rerun_section(study, heading)
    figs = study.get("figures", {})
    if figs:
        lines += [f"{heading}# Figures", ""]
        captions = {"score_vs_k": "Test score vs k/n (mean ± std over seeds; grey band: baseline ± std)",
                    "lam_vs_kth": "lam and the batch's k-th largest token loss over updates (first seed)",
                    "loss_curves": "Training and validation nll per system (bits/token; faint lines: other seeds)"}
        for key, path in figs.items():
            lines += [f"![{captions.get(key, key)}]({image_prefix}{path})", "", f"*{captions.get(key, key)}.*", ""]
    lines += [f"{heading}# Every run", ""]
    lines.append(tabulate([[r["label"], r["seed"], f"{r['bleu']:.2f}", f"{r['chrf']:.2f}", f"{r['length_ratio']:.3f}",
                            r["final_updates"], f"{r['seconds']:.0f}"] for r in runs],
                          headers=["system", "seed", "BLEU", "chrF", "hyp/ref length", "updates", "seconds"],
                          tablefmt="github"))
    lines += ["", f"BLEU signature: `{study['signatures']['BLEU']}`  ", f"chrF signature: `{study['signatures']['chrF']}`", ""]
    return "\n".join(lines)


INTRO_HEAD = """\
This page is written by `python -m stk_nmt.translation.study page` from the studies' committed run
records (`docs/study-runs/<pair>/`); every number, table and figure below comes from the runs it
lists. It asks whether ST_k (`--criterion stk`, label-smoothed token losses aggregated with the
smoothed top-k average at k/n = R, trainable threshold lam) translates better than the plain average
(`label_smoothed_cross_entropy`), with the same model, recipe and update budget, over several seeds."""

INTRO_TESTS = """\
**How a difference is tested.** Each system is trained with the same seeds as the baseline and
translates the same test sentences. For each matched seed s the corpus-level difference d_s =
score(system, s) − score(baseline, s) (BLEU or chrF) is one observation; the verdict comes from the
paired t-test over seeds of mean(d) = 0. Each variant of a system (the same aggregate and k/n with
extra flags) is also compared, the same way, with the plain system. Holm's adjustment runs over every
comparison on this page (pair x comparison x metric); a comparison is a gain or a loss when its
Holm-adjusted p is below 0.05. An exact sign-flip permutation test over seeds is shown beside it but
cannot decide at this size: with S seeds its smallest p is 2/2^S, 0.0625 at 5 seeds. Beside every "no
significant difference" stands the smallest true difference the t-test detects with 80% power given
the observed seed spread of d, at alpha = 0.05 and at alpha = 0.05/m (Holm's strictest step for m
comparisons): "no significant difference" is not "no difference", and a reader can see whether,
e.g., the paper's +0.5 BLEU was within reach; for BLEU it also says how many seeds, at that spread,
would give the test 80% power against the paper's gains (+0.53 on IWSLT2014, +0.21 on WMT2017). The
seed plan under "Where the study stands" does the same at the family the finished grid will have, and
says how much of the seed spread the test set's sentence sampling explains, i.e. what a larger test
set would buy. Sentence-level bootstraps are secondary evidence only (see the note under each
table)."""

INTRO_CATALOGS = """\
**The data.** The catalog corpora are real human translations found on the machine that ran them:
the gettext catalogs (`<locale dir>/<lang>/LC_MESSAGES/*.mo`) of the installed programs, read with
polib (`python -m stk_nmt.data.catalogs`). They depend on what is installed; each study below names
the catalogs' folder and digest and the hash of each split."""


def _validation_interval(studies: list[dict]) -> str:
    """The update counts at which the runs validated, from their logs (e.g. 'every 200 updates')."""
    steps = sorted({int(r["num_updates"]) for study in studies for run in study["runs"]
                    for r in run["log"]["valid"] if "num_updates" in r})
    if not steps:
        return "at each validation"
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    return f"every {steps[0]} updates" if gaps <= {steps[0]} else f"at updates {', '.join(map(str, steps))}"


def intro(studies: list[dict]) -> str:
    """The page's opening, its study-specific parts (systems, validation, data) from the studies."""
    specs = list(dict.fromkeys(spec for study in studies for spec in study["config"]["systems"]))
    roles = [SYSTEM_ROLES.get(spec) or parse_system(spec).label for spec in specs]
    parts = [INTRO_HEAD + (" The systems: " + "; ".join(roles) + "." if roles else ""), INTRO_TESTS,
             "**What explains a difference.** The hypothesis/reference length ratio (sacreBLEU's sys_len/ref_len)\n"
             "per system; for each ST_k model, which validation target tokens have a label-smoothed loss below its\n"
             "final lam and the weight ST_k gives them (SReLU'(loss − lam): 0.5 at lam, smaller below it but never\n"
             "zero): their share of end-of-sentence, punctuation-only subwords and the 50 most frequent subwords,\n"
             f"beside those tokens' share of all tokens; and the validation curve ({_validation_interval(studies)})."]
    if any(study["corpus"].get("catalogs") for study in studies):
        parts.append(INTRO_CATALOGS)
    return "\n\n".join(parts) + "\n"


def status_line(studies: list[dict]) -> str:
    """How far the grid is, from the records: never a settled answer while runs are missing."""
    finished = sum(len(s["runs"]) for s in studies)
    total = sum(planned(s) for s in studies)
    per = ", ".join(f"{s['config']['name']} {len(s['runs'])} of {planned(s)}" for s in studies)
    if finished >= total:
        return f"**Status: all {total} planned runs finished** ({per})."
    text = (f"**Status: in progress.** {finished} of {total} planned runs are finished ({per}); the others "
            "are not (the grid command under Reproduce resumes them).")
    done = [s for s in studies if complete(s)]
    if not done:
        return text + (" The question is open: every verdict below covers the finished runs only and may change "
                       "as runs finish.")
    names = _and([s["config"]["name"] for s in done])
    running = _and([s["config"]["name"] for s in studies if s not in done])
    # Holm's adjusted p never falls when tests join the family, so only significance can still go.
    significant = any(t.get("verdict") in ("gain", "loss") for s in done for t in comparisons(s["systems"]))
    text += (f" {names} {'are' if len(done) > 1 else 'is'} complete: every planned run finished. The other "
             f"pairs' comparisons can only raise Holm-adjusted p values when they join the family, so no \"no "
             f"significant difference\" on {names} can become a gain or a loss")
    their = "their" if len(done) > 1 else "its"
    text += f"; {their} gains and losses could still lose their significance." if significant else "."
    their = "their" if len(studies) - len(done) > 1 else "its"
    return text + (f" {running}: {their} verdicts cover the finished runs only and may change as runs finish; the "
                   "question is open there.")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _bleu_tests(study: dict) -> list[tuple[str, dict]]:
    """(name, BLEU seed test) of each tested comparison of a study, in the config's system order."""
    tests = []
    for e in study["systems"].values():
        if e.get("seed_test", {}).get("BLEU", {}).get("p") is not None:
            tests.append((f"{e['label']} vs the baseline", e["seed_test"]["BLEU"]))
        contrast = e.get("contrast", {})
        if contrast.get("seed_test", {}).get("BLEU", {}).get("p") is not None:
            tests.append((f"{e['label']} vs {contrast['reference_label']}", contrast["seed_test"]["BLEU"]))
    return tests


def _seeds(n) -> str:
    return "more than 10,000" if n is None else str(n)


TEST_SET_FACTOR = 4  # the larger test set the plan prices


def _pooled_spread(study: dict) -> tuple[float, int, list[str]] | None:
    """The variance of the per-seed BLEU differences pooled over the study's tested comparisons
    (weights n - 1), its degrees of freedom and each comparison's own sd; None when none is tested.
    One comparison's sd from two or three seeds swings widely; the pair's comparisons share the
    same training noise, so their pool is the steadier planning figure."""
    tests = _bleu_tests(study)
    if not tests:
        return None
    df = sum(t["n"] - 1 for _, t in tests)
    variance = sum((t["n"] - 1) * t["sd"] ** 2 for _, t in tests) / df
    return variance, df, [f"{name}: sd {t['sd']:.2f} over {t['n']} seeds" for name, t in tests]


def _sampling_variance(study: dict) -> float | None:
    """The mean squared per-seed sentence-sampling SE of the comparisons against the baseline."""
    se = [x for e in study["systems"].values() for x in e.get("sentence_sampling_se", {}).get("BLEU", [])]
    return float(np.mean(np.square(se))) if se else None


def seed_plan(studies: list[dict], alpha: float = ALPHA, power: float = POWER) -> str | None:
    """How many seeds the paper's effect needs on this page once the grid is complete (Holm's family
    then holds every planned comparison), from the seed spreads observed so far, and what a test set
    TEST_SET_FACTOR times larger would change; None before any comparison has two matched seeds."""
    m = sum(planned_comparisons(study["config"]["systems"]) for study in studies)
    corpus, gain = PAPER_BLEU_GAINS[0]
    parts, total_runs = [], 0
    for study in studies:
        pooled = _pooled_spread(study)
        if pooled is None:
            continue
        variance, df, each = pooled
        if len(each) > 1:
            text = (f"{study['config']['name']}: its {len(each)} tested comparisons ({'; '.join(each)}) pool to sd "
                    f"{variance ** 0.5:.2f} ({df} degrees of freedom; they share runs, so this is rough)")
        else:
            text = f"{study['config']['name']}: its one tested comparison ({each[0]})"
        sampling = _sampling_variance(study)
        if sampling is not None and sampling > variance:
            # A difference's variance is training + sentence sampling: never below the sampling part.
            needed = runs_needed(gain, sampling ** 0.5, alpha / m, power)
            text += (f"; that is below the spread the test set's sentence sampling alone gives a difference (paired "
                     f"sentence bootstrap per seed: SE {sampling ** 0.5:.2f} BLEU), so the plan takes that SE: a "
                     f"comparison needs {_seeds(needed)} seeds, and with a test set {TEST_SET_FACTOR} times larger "
                     f"at least {_seeds(runs_needed(gain, (sampling / TEST_SET_FACTOR) ** 0.5, alpha / m, power))}")
        else:
            needed = runs_needed(gain, variance ** 0.5, alpha / m, power)
            text += f", and a comparison with that spread needs {_seeds(needed)} seeds"
            if sampling is not None and variance > 0:
                larger = (variance - sampling + sampling / TEST_SET_FACTOR) ** 0.5
                text += (f"; the test set's sentence sampling accounts for {sampling / variance:.0%} of that "
                         f"variance (paired sentence bootstrap per seed: SE {sampling ** 0.5:.2f} BLEU), the rest "
                         f"comes from training (the seed, and rounding where a seed's runs ran on different hosts): with "
                         f"a test set {TEST_SET_FACTOR} times larger the sd would be {larger:.2f} and "
                         f"{_seeds(runs_needed(gain, larger, alpha / m, power))} seeds would do")
        parts.append(text)
        if needed is not None:
            total_runs += needed * len(study["config"]["systems"])
    if not parts:
        return None
    seed_counts = sorted({len(set(s["config"]["seeds"]) | set(s["config"].get("planned_seeds", []))) for s in studies})
    text = (f"**Seeds the paper's effect needs.** Once every planned run is in, Holm's family on this page holds "
            f"{m} comparisons, and its strictest step tests at alpha = {alpha:g}/{m}. For {power:.0%} power there "
            f"against the paper's +{gain:.2f} BLEU ({corpus}) at the spread of the per-seed BLEU differences "
            f"observed so far: " + "; ".join(parts) + f". The grid plans {' or '.join(map(str, seed_counts))} seeds "
            f"per system.")
    runs = [r for study in studies for r in study["runs"]]
    if total_runs and runs:
        mean_seconds = sum(r["seconds"] for r in runs) / len(runs)
        hours = total_runs * mean_seconds / 3600
        text += (f" Those seeds for every system of these pairs are {total_runs} runs, about {hours:.0f} h at the "
                 f"{mean_seconds / 60:.0f} min a run has taken on average in these records "
                 f"({max(0.0, hours - len(runs) * mean_seconds / 3600):.0f} h beyond the {len(runs)} runs finished).")
    return text + " The page recomputes this plan from the records as seeds finish."


ALWAYS_AVERAGE_FLAG = "--stk-always-average"


def always_average_finding(studies: list[dict], alpha: float = ALPHA) -> str | None:
    """What the study shows of `--stk-always-average eos` against plain ST_k at the same k/n: each
    pair's seed tests and length ratios, then whether it changed quality (a Holm gain in BLEU or chrF)
    or length (a paired t-test at alpha moving the ratio nearer 1) for the better. None when no
    study has the option among its systems."""
    parts, better_quality, better_length, tested = [], [], [], False
    for study in studies:
        name, systems = study["config"]["name"], study["systems"]
        variants = [e for spec, e in systems.items() if ALWAYS_AVERAGE_FLAG in spec]
        variants_tested = [e for e in variants if "seed_test" in e.get("contrast", {})]
        if not variants_tested:
            if variants or not study["runs"] or ALWAYS_AVERAGE_FLAG in " ".join(study["config"].get("systems", [])):
                parts.append(f"{name}: not tested yet")
            continue
        tested = True
        for e in variants_tested:
            contrast = e["contrast"]
            plain = systems[contrast["reference"]]["length_ratio"]["mean"]
            own = e["length_ratio"]["mean"]
            length = contrast["length_ratio_delta"]
            scores = ", ".join(f"{metric} {t['mean']:+.2f} (Holm p = {t['holm_p']:.3f}, {t['verdict']})"
                               for metric, t in contrast["seed_test"].items())
            parts.append(f"{name} ({len(contrast['matched_seeds'])} seeds): {scores}; hyp/ref length ratio "
                         f"{own:.3f} against {plain:.3f} ({length['mean']:+.3f}, paired t-test p = "
                         f"{length['p']:.3f}, outside Holm's family; |1 - ratio| {abs(1 - own):.3f} against "
                         f"{abs(1 - plain):.3f})")
            if any(t["verdict"] == "gain" for t in contrast["seed_test"].values()):
                better_quality.append(name)
            if length["p"] is not None and length["p"] < alpha and abs(1 - own) < abs(1 - plain):
                better_length.append(name)
    if not tested:
        return None
    text = (f"**End-of-sentence tokens always averaged** (`{ALWAYS_AVERAGE_FLAG} eos`), against plain ST_k at the "
            f"same k/n on matched seeds. " + "; ".join(parts) + ". ")
    open_ = any(len(study["runs"]) < planned(study) for study in studies)
    so_far = "So far it" if open_ else "It"
    if better_quality or better_length:
        found = [f"quality for the better on {_and(better_quality)}"] if better_quality else []
        found += [f"the length ratio for the better on {_and(better_length)}"] if better_length else []
        return text + f"{so_far} changed {' and '.join(found)}; docs/criteria.md documents the option."
    return text + (f"On no pair{' so far' if open_ else ''} did it change BLEU or chrF (against plain ST_k, Holm) or "
                   f"the length ratio (paired t-test, p < {alpha:g}, nearer 1) for the better: this study gives no "
                   "reason to use it. It stays an option, off by default (docs/criteria.md).")


def page_conclusion(studies: list[dict], min_bleu: float = 20.0) -> str:
    m = apply_holm(studies)
    lines = ["## Where the study stands", "", status_line(studies), ""]
    for study in studies:
        lines.append(f"- **{study['config']['name']}**: {conclusion(study, min_bleu)}")
        lines += [f"  - {line}" for line in system_verdicts(study)]
    lines += ["", f"Holm's adjustment runs over the {m} comparison(s) with at least two matched seeds on this page."
              if m else "No comparison has two matched seeds yet: nothing is tested.", ""]
    finding = always_average_finding(studies)
    if finding:
        lines += [finding, ""]
    plan = seed_plan(studies)
    if plan:
        lines += [plan, ""]
    return "\n".join(lines)


__all__ = ["apply_holm", "figures", "intro", "markdown", "page_conclusion", "always_average_finding", "conclusion",
           "status_line", "TestResult"]
