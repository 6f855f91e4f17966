"""The ``ogbl-ddi`` comparison of the ``sage-mlp`` / ``gcn-mlp`` presets, from
stored rows: ``python -m benchmarks.ogb_report --folder FOLDER``.

Reads ``FOLDER/linkpred.csv`` (written by ``python -m benchmarks.linkpred
--model sage-mlp`` or ``gcn-mlp``) and writes ``FOLDER/ogb_report.md``: per
model, method and size the test Hits@20 (mean ± std over the seeds), the
parameters before and after :func:`damgraph.compact`, the epoch budget
and the seconds per epoch and per run, beside OGB's leaderboard rows; and
``FOLDER/ogb_curves.png``, validation Hits@20 against epoch for every run,
so a reader sees how far from convergence each one stopped. Trains nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from benchmarks.plan import run_id
from benchmarks.store import read_rows
from benchmarks.tables import mean_std, panels, save_figure
from damgraph.config import LATER_SETTINGS, model_config
from damgraph.io import atomic_write_text

#: OGB's ``ogbl-ddi`` leaderboard (test Hits@20 in %, mean ± std over 10
#: runs, parameters where they count them), the rows the presets are set beside.
LEADERBOARD: Tuple[Tuple[str, str, int], ...] = (
    ("GraphSAGE (OGB's example, sage-mlp)", "53.90 ± 4.74", 1_421_057),
    ("GCN (OGB's example, gcn-mlp)", "37.07 ± 5.07", 1_289_985),
    ("Node2vec", "23.26 ± 2.09", 0),
    ("Matrix factorisation", "13.68", 0),
    ("Common neighbours", "17.73", 0),
)


def groups(rows: Sequence[dict]) -> Dict[Tuple[str, str, int, int, str], List[dict]]:
    """Rows by (model, method, size, epoch budget, other settings beside the preset)."""
    out: Dict[Tuple[str, str, int, int, str], List[dict]] = {}
    for row in rows:
        key = (row["model"], row["method"], int(row["dim"]), int(float(row["epochs_budget"])), row["variant"])
        out.setdefault(key, []).append(row)
    return out


def _settings(config_id: str) -> Dict[str, str]:
    return dict(part.split("=", 1) for part in config_id.split("|") if "=" in part)


def with_budget(rows: Sequence[dict]) -> List[dict]:
    """The rows with their epoch cap (``epochs`` in the config id) as
    ``epochs_budget``, and as ``variant`` the other settings in which their
    config id departs from the model's preset."""
    neutral = {k: str(v) for k, v in LATER_SETTINGS.items()}  # what an id leaves out
    out = []
    for row in rows:
        preset_config = model_config(row["model"])
        settings = {**neutral, **_settings(row["config_id"])}
        preset = {**neutral, **_settings(run_id(preset_config, row["method"]))}
        cap = settings.pop("epochs", str(preset_config.epochs))
        preset.pop("epochs", None)
        variant = " ".join(f"{k}={settings.get(k)}" for k in sorted({*settings, *preset})
                           if settings.get(k) != preset.get(k))
        if row["method"] != "fixed" and row.get("lam") not in (None, "") and float(row["lam"]) != preset_config.lam:
            variant = f"lam={float(row['lam']):g} {variant}".strip()  # a penalty weight of the grid, not the preset's
        out.append({**row, "epochs_budget": cap, "variant": variant or "preset"})
    return out


def table(rows: Sequence[dict]) -> str:
    lines = ["| model | method | settings | size | seeds | epochs run (cap) | learned widths (table/hidden/output) | "
             "test Hits@20 (%) | parameters | after compact() | s per epoch | s per run |", "|" + "---|" * 12]
    for (model, method, dim, cap, variant), members in sorted(
            groups(rows).items(), key=lambda kv: (kv[0][0], kv[0][1] != "dam", kv[0][4] != "preset", -kv[0][2])):
        hits, hits_std = mean_std([100 * float(r["test_hits@20"]) for r in members])
        per_epoch = mean_std([float(r["train_s"]) / float(r["epochs"]) for r in members])[0]
        per_run = mean_std([float(r["train_s"]) for r in members])[0]
        run = mean_std([float(r["epochs"]) for r in members])[0]
        widths = "; ".join(" / ".join(w.split("=")[1] for w in r["gate_widths"].split()) for r in members) \
            if method != "fixed" else "–"
        compact = int(mean_std([float(r["num_params_compact"]) for r in members])[0])
        lines.append(f"| {model} | {method} | {variant} | {dim} | {len(members)} | {run:.0f} ({cap}) | {widths} | "
                     f"{hits:.2f}{f' ± {hits_std:.2f}' if len(members) > 1 else ''} | "
                     f"{int(float(members[0]['num_params'])):,} | {compact:,} | {per_epoch:.1f} | {per_run:.0f} |")
    lines += ["", "OGB's leaderboard (10 runs; the examples' 200 epochs):", "", "| model | test Hits@20 (%) | parameters |",
              "|---|---|---|"]
    lines += [f"| {name} | {hits} | {params:,} |" if params else f"| {name} | {hits} | – |"
              for name, hits, params in LEADERBOARD]
    return "\n".join(lines)


def plot_curves(rows: Sequence[dict], path: Path) -> None:
    from matplotlib import colormaps

    models = sorted({r["model"] for r in rows})
    fig, axes = panels(len(models), 7.5, 3.8)
    for ax, model in zip(axes, models):
        for i, r in enumerate(sorted((r for r in rows if r["model"] == model),
                                     key=lambda r: (r["method"], -int(r["dim"])))):
            points = [p.split(":") for p in r["val_trajectory"].split()]
            label = f"{r['method']} {r['dim']}" + (f" -> {r['width']}" if r["method"] != "fixed" else "")
            variant = "" if r["variant"] == "preset" else f", {r['variant']}"
            style = "--" if r["method"] != "fixed" else "-"
            color = colormaps["tab20"](i % 20)
            ax.plot([int(e) for e, _ in points], [100 * float(v) for _, v in points], style, marker=".",
                    color=color, label=f"{label} (seed {r['seed']}{variant})")
            if r.get("settled_epoch"):
                ax.axvline(int(float(r["settled_epoch"])), color=color, linestyle=":", linewidth=0.8)
        ax.set(title=f"ogbl-ddi, {model}", xlabel="epoch", ylabel="validation Hits@20 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ogb_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", required=True, help="a result folder whose linkpred.csv holds sage-mlp / gcn-mlp runs")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    path = folder / "linkpred.csv"
    if not path.is_file():
        print(f"error: {path} does not exist; give a folder written by python -m benchmarks.linkpred", file=sys.stderr)
        return 2
    rows = with_budget([r for r in read_rows(path) if r["model"] in ("sage-mlp", "gcn-mlp") and r.get("test_hits@20")])
    if not rows:
        print(f"error: {path} holds no sage-mlp or gcn-mlp run with a test Hits@20; run python -m benchmarks.linkpred "
              "--model sage-mlp --datasets ogbl-ddi first", file=sys.stderr)
        return 2
    text = table(rows)
    atomic_write_text(folder / "ogb_report.md", text + "\n")
    plot_curves(rows, folder / "ogb_curves.png")
    print(text + f"\n\nwrote {folder / 'ogb_report.md'}, {folder / 'ogb_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
