"""The study's figures (matplotlib, PNG) and markdown (tabulate) from study.json's content."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from ..files import atomic_write
from .recipes import RECIPES
from .study_stats import TestResult, verdict


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
        for aggregate, marker in (("stk", "o"), ("atk", "s"), ("matk", "^")):
            points = sorted((e["k_ratio"], e[key]["mean"], e[key]["std"]) for e in systems.values()
                            if e["aggregate"] == aggregate)
            if points:
                x, y, err = zip(*points)
                ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=aggregate)
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


def system_verdicts(study: dict) -> list[str]:
    lines = []
    for spec, e in study["systems"].items():
        if "test_BLEU" not in e:
            continue
        b, c = e["test_BLEU"], e["test_chrF"]
        spread = study["systems"].get("baseline", {}).get("bleu", {}).get("std")
        lines.append(
            f"{e['label']}: BLEU {b['delta']:+.2f} (95% CI {b['ci_low']:+.2f} .. {b['ci_high']:+.2f}, p = {b['p_value']:.3f}: "
            f"{b['verdict']}), chrF {c['delta']:+.2f} (p = {c['p_value']:.3f}: {c['verdict']})"
            + (f"; baseline BLEU seed std {spread:.2f}" if spread is not None else ""))
    return lines


def conclusion(study: dict) -> str:
    tested = {spec: e for spec, e in study["systems"].items() if "test_BLEU" in e}
    if not tested:
        return "No system was compared with a baseline."
    gains = [e["label"] for e in tested.values() if e["test_BLEU"]["verdict"] == "gain"]
    losses = [e["label"] for e in tested.values() if e["test_BLEU"]["verdict"] == "loss"]
    chrf_gains = [e["label"] for e in tested.values() if e["test_chrF"]["verdict"] == "gain"]
    parts = []
    if gains:
        best = max(tested.values(), key=lambda e: e["test_BLEU"]["delta"] if e["label"] in gains else -1e9)
        parts.append(f"Significant BLEU gain over the baseline (seeds and sentences resampled, p < 0.05): "
                     f"{', '.join(gains)}; the largest is {best['label']} ({best['test_BLEU']['delta']:+.2f} BLEU).")
    else:
        untested = [e["label"] for e in tested.values() if e["test_BLEU"]["verdict"].startswith("untested")]
        parts.append("No ST_k/AT_k system has a significant BLEU gain over the baseline at this scale "
                     "(seeds and sentences resampled, p < 0.05)."
                     + (f" Not tested for want of a second matched seed: {', '.join(untested)}." if untested else ""))
    if losses:
        parts.append(f"Significantly worse BLEU: {', '.join(losses)}.")
    if chrf_gains:
        parts.append(f"Significant chrF gain: {', '.join(chrf_gains)}.")
    return " ".join(parts)


def markdown(study: dict, image_prefix: str = "", heading: str = "#") -> str:
    config, systems = study["config"], study["systems"]
    corpus = study["corpus"]
    manifest = corpus["manifest"]
    lines = [f"{heading} Study `{config['name']}`: {manifest['config']['source_lang']}->"
             f"{manifest['config']['target_lang']}, corpus `{manifest['config']['corpus']}`", ""]
    recipe = RECIPES[config["recipe"]].description
    total = sum(r["seconds"] for r in study["runs"])
    if study.get("planned_runs", len(study["runs"])) > len(study["runs"]):
        lines += [f"**PARTIAL: {len(study['runs'])} of {study['planned_runs']} planned runs finished** "
                  f"(the study was stopped by the time limit; every statistic below uses the finished runs "
                  f"only).", ""]
    lines += [
        f"**Budget.** {len(config['seeds'])} seeds ({', '.join(map(str, config['seeds']))}) x "
        f"{len(systems)} systems; recipe `{config['recipe']}` ({recipe}; the extra fairseq flags below override it), "
        f"{config['max_update']} updates "
        f"per run, label smoothing {config['label_smoothing']}, extra fairseq flags "
        f"`{' '.join(config['fairseq_args']) or 'none'}`; checkpoint_last evaluated, beam {config['beam']}; "
        f"{total / 60:.0f} min of wall time in all on a shared 2-core CPU.", "",
        f"**Data.** train/valid/test {', '.join(f'{v:,}' for v in manifest['sizes_binarized'].values())} "
        f"pairs (binarised); test {corpus['test_sentences']} sentences."]
    catalogs = corpus.get("catalogs")
    if catalogs:
        lines[-1] += (f" Built from {len(catalogs['catalogs'])} gettext catalogs in "
                      f"{catalogs['locale_dir']}/{catalogs['target_lang']}/LC_MESSAGES (digest "
                      f"`{catalogs['catalog_digest'][:16]}`), counts {catalogs['counts']}; split hashes (sha256 of "
                      f"the source side): " + ", ".join(f"{k} `{v['sha256_source'][:12]}`"
                                                         for k, v in catalogs["splits"].items()) + ".")
    lines += ["", f"**Command.** `{config['command']}`", "", f"{heading}# Scores (test set)", ""]
    rows = []
    for spec, e in systems.items():
        b, c = e.get("test_BLEU"), e.get("test_chrF")
        per_seed = e.get("per_seed_bootstrap_p", {})
        rows.append([e["label"], len(e["seeds"]), _pm(e, "bleu"), _pm(e, "chrf"), _pm(e, "length_ratio", 3),
                     f"{b['delta']:+.2f}" if b else "", f"{b['p_value']:.3f}" if b else "",
                     f"{b['ci_low']:+.2f} .. {b['ci_high']:+.2f}" if b else "",
                     f"{c['delta']:+.2f}" if c else "", f"{c['p_value']:.3f}" if c else "",
                     " ".join(f"{p['BLEU']:.3f}" for p in per_seed.values()) if per_seed else ""])
    lines.append(tabulate(rows, headers=["system", "seeds", "BLEU", "chrF", "hyp/ref length", "ΔBLEU",
                                         "p (seeds×sents)", "95% CI ΔBLEU", "ΔchrF", "p chrF", "per-seed p BLEU"],
                          tablefmt="github"))
    lines += ["", "Mean ± sample std over seeds. Δ: mean over matched seeds of system − baseline. "
              "p (seeds×sents): the two-level paired bootstrap resampling seeds and sentences "
              f"({config['bootstrap_samples']} samples, see below); per-seed p: sacrebleu's paired bootstrap "
              "of each seed against the baseline of the same seed (does not account for seed spread).", ""]
    lines += [f"{heading}# Conclusion", "", conclusion(study), ""]
    lines += [f"- {line}" for line in system_verdicts(study)] + [""]
    below_rows = [[e["label"], f"{t['lam']:.3f}", f"{100 * t['below_lam_fraction']:.1f}%",
                   f"{100 * t['zero_gradient_fraction']:.1f}%",
                   *(f"{100 * t['share_of_below'][k]:.1f}% ({100 * t['share_of_all'][k]:.1f}%)"
                     for k in ("eos", "punct", "frequent"))]
                  for e in systems.values() if (t := e.get("tokens_below_lam"))]
    if below_rows:
        lines += [f"{heading}# Which target tokens fall below lam (no gradient)", "",
                  tabulate(below_rows, headers=["system", "final lam (nats)", "tokens below lam",
                                                "below lam − delta (zero gradient)", "EOS", "punctuation",
                                                "50 most frequent subwords"], tablefmt="github"), "",
                  f"Each trained model's label-smoothed token losses on the first {config['analysis_sentences']} "
                  "validation sentences (teacher forcing, no dropout) against its final lam; mean over seeds. "
                  "The last three columns: share of the below-lam tokens that are end-of-sentence, "
                  "punctuation-only subwords and the 50 most frequent subwords, in brackets their share among "
                  "all tokens: a share above the bracket means ST_k stops training those tokens first.", ""]
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
                            r["final_updates"], f"{r['seconds']:.0f}"] for r in study["runs"]],
                          headers=["system", "seed", "BLEU", "chrF", "hyp/ref length", "updates", "seconds"],
                          tablefmt="github"))
    lines += ["", f"BLEU signature: `{study['signatures']['BLEU']}`  ", f"chrF signature: `{study['signatures']['chrF']}`", ""]
    return "\n".join(lines)


INTRO = """\
This page is written by `python -m stk_nmt.translation.study page` from the studies' own records
(`study.json`); every number, table and figure below comes from the runs it lists. It asks whether
ST_k (`--criterion stk`, label-smoothed token losses aggregated with the smoothed top-k average at
k/n = R, trainable threshold lam) translates better than the plain average
(`label_smoothed_cross_entropy`), with the same model, recipe and update budget, over several seeds.

**How a difference is tested.** Each system is trained with the same seeds as the baseline and
translates the same test sentences. Per seed, sacrebleu's paired bootstrap compares the two
(that test ignores the seed spread). The verdict uses one test across seeds and sentences
together, a two-level paired bootstrap: each of B samples draws the seeds with replacement and the
test sentences with replacement (the same sentences for all seeds and both systems) and takes the
mean over the drawn seeds of the corpus-level difference (system − baseline, BLEU or chrF from
sacrebleu's sufficient statistics). p = (1 + #{|delta_b − mean delta| ≥ |observed delta|}) / (B + 1),
as in sacrebleu's bootstrap; the 95% interval is the 2.5..97.5 percentile of delta_b. "gain" means
p < 0.05 and an interval above 0; otherwise "no significant difference" (or "loss"). Because the seeds
are resampled, a difference that the seed spread explains is not called a gain. With 3 seeds the
seed level is coarse (the interval tends to be too narrow), so a p just under 0.05 is weak evidence.

**What explains a difference.** The hypothesis/reference length ratio (sacreBLEU's sys_len/ref_len)
per system, and, for each ST_k model, which validation target tokens have a label-smoothed loss
below its final lam (ST_k gives them weight smoother'(loss − lam): zero below lam − delta, i.e. no
gradient): their share of end-of-sentence, punctuation-only subwords and the 50 most frequent
subwords, beside those tokens' share of all tokens.

**The data.** The catalog corpora are real human translations found on this machine: the gettext
catalogs (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`) of the installed programs, read with polib
(`python -m stk_nmt.data.catalogs`). They depend on what is installed; each study below names the
catalogs' digest and the hash of each split. The embedded corpus is the synthetic default corpus
of the demo.
"""


def page_conclusion(studies: list[dict], weak_bleu: float = 5.0) -> str:
    lines = ["## Answer", ""]
    gains, losses, chrf_gains, weak = [], [], [], []
    for study in studies:
        name = study["config"]["name"]
        note = ""
        base = study["systems"].get("baseline")
        if base and base["bleu"]["mean"] < weak_bleu:
            weak.append(name)
            note = (f" The baseline itself reaches only {base['bleu']['mean']:.2f} BLEU / {base['chrf']['mean']:.2f} "
                    "chrF here: the models have barely begun to translate, so this comparison says little "
                    "about trained models.")
        lines.append(f"- **{name}**: {conclusion(study)}{note}")
        for e in study["systems"].values():
            verdict_bleu = e.get("test_BLEU", {}).get("verdict")
            if verdict_bleu == "gain":
                gains.append(f"{e['label']} on {name}")
            elif verdict_bleu == "loss":
                losses.append(f"{e['label']} on {name}")
            if e.get("test_chrF", {}).get("verdict") == "gain":
                chrf_gains.append(f"{e['label']} on {name}")
    best = []
    for study in studies:
        stk = [e for e in study["systems"].values() if e["aggregate"] == "stk"]
        if stk:
            top = max(stk, key=lambda e: e["bleu"]["mean"])
            best.append(f"{top['k_ratio']:g} on {study['config']['name']}")
    summary = ("ST_k gave a significant BLEU gain: " + ", ".join(gains) + "." if gains else
               "no significant BLEU gain from ST_k at any k/n tried, at this scale.")
    if losses:
        summary += " Significantly worse BLEU: " + ", ".join(losses) + "."
    if chrf_gains:
        summary += " Significant chrF gain: " + ", ".join(chrf_gains) + "."
    if best:
        summary += " The k/n with the highest mean BLEU among the ST_k systems: " + ", ".join(best) + "."
    if weak:
        summary += (" On " + ", ".join(weak) + " the baselines stay below " f"{weak_bleu:g} BLEU, too weak for "
                    "a verdict on ST_k itself.")
    lines += ["", "In short: " + summary + " These are small models with a small update budget on a shared "
              "CPU: the answer is about this scale only, not about the paper's setting.", ""]
    return "\n".join(lines)


__all__ = ["figures", "markdown", "page_conclusion", "conclusion", "TestResult", "verdict"]
