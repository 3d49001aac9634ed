"""The real-time student study: Kodak24 SSIM against FPS for candidates trained with one recipe and budget.

Reads one `edgesharp bench all` run (all candidates timed and scored together, see `make pareto`) and
writes pareto.md (table, front, targets), pareto.json and pareto.png (quality-vs-speed chart):

    python -m edgesharp.benchmarks.pareto out/bench-pareto/results.json     # -> benchmarks/results/<run's machine>-pareto/

Without --out the study goes beside the stored bench results, named after the run's machine slug, with the run
itself copied in as bench-results.json.

Speed axis of the front: OpenVINO model-only async FPS at 640x480 (end-to-end FPS is capped by the
camera's 30 FPS, so it cannot rank fast models); quality axis: mean SSIM over the three blur levels.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edgesharp.benchmarks.report import machine_line, markdown_table, pyplot, read_results
from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

LEVELS = ("heavy", "medium", "low")
SIZE, LARGE = "640x480", "1280x720"
# the real-time student issue's targets
E2E_TARGETS = {SIZE: 20.0, LARGE: 10.0}
SPEEDUP_TARGET = 10.0
REFERENCE_SLACK = 0.005


def _fps(results: dict, **match) -> float | None:
    for row in results.get("fps") or []:
        if all(row.get(k) == v for k, v in match.items()) and row.get("fps") is not None and "error" not in row:
            return float(row["fps"])
    return None


def baselines(results: dict) -> dict[str, dict[str, float]]:
    """SSIM per level of the baselines (blurred input, unsharp mask) in the run."""
    out: dict[str, dict[str, float]] = {}
    for row in (results.get("quality") or {}).get("rows", []):
        if row["kind"] == "baseline" and row["level"] in LEVELS:
            out.setdefault(row["method"], {})[row["level"]] = row["ssim"]
    return out


def candidates(results: dict, precision: str = "int8") -> list[dict]:
    """One row per scored OpenVINO bundle: SSIM per level at `precision` (FP32 where INT8 was refused) and its speeds."""
    scored: dict[tuple[str, str], dict[str, float]] = {}
    for row in (results.get("quality") or {}).get("rows", []):
        if row["kind"] == "student" and row["backend"] == "openvino" and row["level"] in LEVELS:
            scored.setdefault((row["model"], row["precision"]), {})[row["level"]] = row["ssim"]
    archs = {row["model"]: row.get("arch") for row in results.get("fps") or []}
    rows = []
    for model in dict.fromkeys(m for m, _ in scored):
        prec = precision if (model, precision) in scored else "fp32"
        ssim = scored.get((model, prec), {})
        if set(ssim) != set(LEVELS):
            log.warning("%s: not scored at every level; left out", model)
            continue
        speed = {"backend": "openvino", "precision": prec}
        rows.append({
            "model": model, "arch": archs.get(model) or model, "precision": prec,
            "ssim": ssim, "mean_ssim": sum(ssim.values()) / len(ssim),
            "async_fps": _fps(results, kind="model", model=model, size=SIZE, mode="async", **speed),
            "e2e_fps": {s: _fps(results, kind="e2e", model=model, size=s, **speed) for s in E2E_TARGETS},
            "pytorch_fps": _fps(results, kind="model", model=model, size=SIZE, backend="pytorch"),
            "gmacs_per_frame": next((r.get("gmacs_per_frame") for r in results.get("fps") or []
                                     if r.get("model") == model and r.get("size") == SIZE and r.get("gmacs_per_frame")), None),
        })
    return rows


def pareto_front(rows: list[dict]) -> list[str]:
    """Models no other model beats on both model-only FPS and mean SSIM, fastest first."""
    timed = [r for r in rows if r["async_fps"] is not None]
    front = [r for r in timed
             if not any(o is not r and o["async_fps"] >= r["async_fps"] and o["mean_ssim"] >= r["mean_ssim"]
                        and (o["async_fps"] > r["async_fps"] or o["mean_ssim"] > r["mean_ssim"]) for o in timed)]
    return [r["model"] for r in sorted(front, key=lambda r: -r["async_fps"])]


def targets(rows: list[dict], base: dict[str, dict[str, float]], reference: str) -> dict[str, dict]:
    """Each candidate against the issue's targets; `reference` names the seed's student (quality floor, PyTorch speed)."""
    ref = next((r for r in rows if r["arch"] == reference or r["model"] == reference), None)
    ref_torch = ref["pytorch_fps"] if ref else None
    out = {}
    for r in rows:
        t: dict = {f"e2e {s} >= {v:g}": (r["e2e_fps"][s] is not None and r["e2e_fps"][s] >= v) for s, v in E2E_TARGETS.items()}
        if ref_torch:
            t[f"{SPEEDUP_TARGET:g}x {reference} PyTorch"] = bool(r["e2e_fps"][SIZE] and r["e2e_fps"][SIZE] >= SPEEDUP_TARGET * ref_torch)
        for name, levels in base.items():
            # "unsharp mask" is tuned per level (it knows the blur); the blind one, like a student, does not
            if name in ("blurred input", "unsharp mask", "unsharp mask (blind)"):
                t[f"above {name}"] = all(r["ssim"][lv] > levels[lv] for lv in LEVELS if lv in levels)
        if ref is not None:
            t[f"{reference} - {REFERENCE_SLACK:g}"] = all(r["ssim"][lv] >= ref["ssim"][lv] - REFERENCE_SLACK for lv in LEVELS)
        out[r["model"]] = t
    return out


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def render_markdown(results: dict, rows: list[dict], front: list[str], checks: dict, base: dict, reference: str) -> str:
    header = ["model", "arch", "prec", "GMAC/frame 640x480", *[f"SSIM {lv}" for lv in LEVELS], "mean",
              "OV async FPS 640x480", "e2e FPS 640x480", "e2e FPS 1280x720", "front"]
    body = [[r["model"], r["arch"], r["precision"], _f(r["gmacs_per_frame"]), *[f"{r['ssim'][lv]:.4f}" for lv in LEVELS],
             f"{r['mean_ssim']:.4f}", _f(r["async_fps"]), _f(r["e2e_fps"][SIZE]), _f(r["e2e_fps"][LARGE]),
             "yes" if r["model"] in front else ""] for r in sorted(rows, key=lambda r: -(r["async_fps"] or 0))]
    for name, levels in base.items():
        body.append([name, "-", "-", "-", *[_f(levels.get(lv), "{:.4f}") for lv in LEVELS], "-", "-", "-", "-", ""])
    ref = next((r for r in rows if r["arch"] == reference), None)
    lines = [
        "# Real-time student study: quality against speed",
        "",
        f"Bench run: {results.get('created', '?')}, command: `{results.get('command', '?')}`",
        "",
        machine_line(results.get("machine") or {}),
        "",
        "SSIM: Kodak24 at the protocol's three blur levels, OpenVINO at the precision shown (INT8 unless the SSIM guard "
        "refused it). Speeds from the same run: model-only OpenVINO async at 640x480, and the end-to-end `run` "
        "pipeline fed by a camera-like source paced at 30 FPS. The Pareto front is taken on model-only FPS and mean SSIM.",
        "",
        *markdown_table(header, body),
        "",
    ]
    if ref and ref["pytorch_fps"]:
        lines += [f"{reference} in PyTorch eager FP32 at {SIZE}, same run: {ref['pytorch_fps']:.2f} FPS.", ""]
    names = sorted({k for t in checks.values() for k in t})
    lines += ["## Targets", "", *markdown_table(["model", *names],
                                          [[m, *["yes" if t.get(n) else "no" for n in names]] for m, t in checks.items()]), ""]
    lines += [f"Pareto front (fastest first): {', '.join(front) or 'none'}.", ""]
    return "\n".join(lines)


def draw_chart(path: Path, rows: list[dict], front: list[str], base: dict) -> Path:
    """Mean SSIM against model-only FPS; front members numbered (keyed in a box), the rest grey and unlabelled."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    timed = [r for r in rows if r["async_fps"]]
    on = sorted((r for r in timed if r["model"] in front), key=lambda r: -r["async_fps"])
    off = [r for r in timed if r["model"] not in front]
    if off:
        ax.scatter([r["async_fps"] for r in off], [r["mean_ssim"] for r in off], color="lightgrey",
                   edgecolors="grey", zorder=3, label="off the front (table)")
    ax.scatter([r["async_fps"] for r in on], [r["mean_ssim"] for r in on], color="tab:blue", zorder=4)
    for i, r in enumerate(on, 1):
        ax.annotate(str(i), (r["async_fps"], r["mean_ssim"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if on:
        ax.plot([r["async_fps"] for r in on], [r["mean_ssim"] for r in on], color="tab:orange", lw=1.5,
                label="Pareto front", zorder=2)
        key = "\n".join(f"{i}  {r['model']}" for i, r in enumerate(on, 1))
        ax.text(0.98, 0.95, key, transform=ax.transAxes, ha="right", va="top", multialignment="left", fontsize=8,
                bbox=dict(boxstyle="round", fc="white", ec="lightgrey"))
    for (name, levels), style in zip(base.items(), ("--", ":", "-."), strict=False):
        if set(LEVELS) <= set(levels):
            ax.axhline(sum(levels[lv] for lv in LEVELS) / len(LEVELS), ls=style, color="grey", lw=1, label=name)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"OpenVINO model-only async FPS at {SIZE} (log)")
    ax.set_ylabel("Kodak24 SSIM, mean of heavy/medium/low")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_study(results_path: Path, out_dir: Path, reference: str = "nafnet-tiny", chart: bool = True) -> dict:
    """Build the study from a bench results.json into `out_dir`; returns what pareto.json holds."""
    results = read_results(results_path)
    rows = candidates(results)
    if not rows:
        raise ValueError(f"{results_path}: no OpenVINO student scored at {', '.join(LEVELS)}; run `edgesharp bench all` with --images")
    base = baselines(results)
    front = pareto_front(rows)
    checks = targets(rows, base, reference)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = {"source": str(results_path), "command": results.get("command"), "created": results.get("created"),
             "rows": rows, "baselines": base, "front": front, "targets": checks, "reference": reference}
    (out_dir / "pareto.json").write_text(json.dumps(study, indent=1) + "\n")
    (out_dir / "pareto.md").write_text(render_markdown(results, rows, front, checks, base, reference))
    if chart:
        draw_chart(out_dir / "pareto.png", rows, front, base)
    return study


def stored_study_dir(results_path: Path) -> Path:
    """benchmarks/results/<machine slug of the run>-pareto/, holding a copy of the run as bench-results.json."""
    import shutil

    from edgesharp.benchmarks.readme_tables import RESULTS_ROOT

    slug = (read_results(results_path).get("machine") or {}).get("slug")
    if not slug:
        raise ValueError(f"{results_path}: no machine slug in the run; pass --out")
    out = RESULTS_ROOT / f"{slug}-pareto"
    out.mkdir(parents=True, exist_ok=True)
    if results_path.resolve() != (out / "bench-results.json").resolve():
        shutil.copyfile(results_path, out / "bench-results.json")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.pareto", description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="results.json of an `edgesharp bench all` run over the candidates")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for pareto.md/.json/.png (default: benchmarks/results/<machine slug of the run>-pareto, "
                        "with the run copied in as bench-results.json)")
    p.add_argument("--reference", default="nafnet-tiny", help="the seed student's arch or model name (default nafnet-tiny)")
    p.add_argument("--no-chart", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.out is None:
            args.out = stored_study_dir(args.results)
        study = write_study(args.results, args.out, args.reference, chart=not args.no_chart)
    except (OSError, ValueError, EdgesharpError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(study['rows'])} candidates; front: {', '.join(study['front'])}; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
