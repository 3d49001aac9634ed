"""Benchmark reports: `results.json`, `report.md` (tables), PNG charts, and ratios against an earlier run.

results.json: {"format", "created", "command", "machine", "config", "fps": [rows], "quality": {"rows": [...], ...}}
Rows are the dicts `edgesharp.benchmarks.fps` and `edgesharp.benchmarks.quality` produce. matplotlib is imported only
when charts are drawn.

    python -m edgesharp.benchmarks.report benchmarks/results/*/results.json     # re-render each report.md
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edgesharp.edge.errors import EdgesharpError

log = logging.getLogger(__name__)

FORMAT = "edgesharp-bench/1"


# -- results.json -------------------------------------------------------------------------------------------

def write_results(out_dir: Path, results: dict) -> Path:
    from edgesharp.edge.imaging.io import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    atomic_write_bytes(path, (json.dumps(results, indent=1, default=str) + "\n").encode())
    return path


def read_results(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgesharpError(f"{path}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise EdgesharpError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EdgesharpError(f"{path}: not an edgesharp benchmark results file (format {FORMAT!r})")
    return data


def fps_rows(results: dict, kind: str) -> list[dict]:
    return [r for r in results.get("fps") or [] if r.get("kind") == kind]


def quality_rows(results: dict) -> list[dict]:
    return list((results.get("quality") or {}).get("rows") or [])


def row_key(row: dict) -> str:
    if row.get("suite") == "quality":
        return f"quality|{row['method']}|{row['level']}"
    return "|".join(str(row.get(k)) for k in ("kind", "model", "backend", "precision", "size", "mode"))


# -- tables -------------------------------------------------------------------------------------------------

def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return out


def _f(x, digits=1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def pytorch_reference(results: dict) -> dict[tuple[str, str], float]:
    """(model, size) -> PyTorch eager FP32 sync FPS, the baseline ratios are taken against."""
    return {(r["model"], r["size"]): r["fps"] for r in fps_rows(results, "model")
            if r["backend"] == "pytorch" and r.get("fps")}


def _precision_label(row: dict) -> str:
    """OpenVINO executes an fp32 IR in bf16 on CPUs with AVX512_BF16/AMX unless told otherwise; say so."""
    hint = str((row.get("info") or {}).get("inference_precision_hint", ""))
    if row["precision"] == "fp32" and "bf" in hint:
        return "fp32 (bf16 exec)"
    return row["precision"]


def model_table(results: dict) -> list[str]:
    ref = pytorch_reference(results)
    rows = []
    for r in fps_rows(results, "model"):
        if r.get("error"):
            rows.append([r["model"], r["backend"], r["precision"], r["size"], r["mode"], f"error: {r['error']}",
                         "", "", "", "", ""])
            continue
        lat = r.get("latency_ms") or {}
        base = ref.get((r["model"], r["size"]))
        rows.append([
            r["model"], r["backend"], _precision_label(r), r["size"], f"{r['mode']} x{r.get('requests', 1)}",
            f"{r['fps']:.2f} ±{r.get('spread_pct', 0):.0f}%",
            f"{_f(lat.get('p50'))} / {_f(lat.get('p95'))}" if lat else "-",
            _f(r.get("gmacs_per_frame"), 2), _f(r.get("achieved_gmacs")), _f(r.get("peak_pct")),
            f"{r['fps'] / base:.2f}x" if base else "-",
        ])
    return markdown_table(["model", "backend", "precision", "size", "mode", "FPS (spread)", "latency p50/p95 ms",
                   "GMAC/frame", "GMAC/s", "% peak", "vs PyTorch"], rows)


def e2e_table(results: dict) -> list[str]:
    rows = []
    for r in fps_rows(results, "e2e"):
        if r.get("error"):
            rows.append([r["model"], r["backend"], r["precision"], r["size"], r["mode"], f"error: {r['error']}",
                         "", "", "", ""])
            continue
        lat = r.get("latency_ms") or {}
        rows.append([r["model"], r["backend"], r["precision"], r["size"], r["mode"], _f(r["fps"]),
                     f"{r['frames_dropped']}/{r['frames_captured']} ({r['drop_pct']:.0f}%)",
                     f"{_f(lat.get('p50'), 0)} / {_f(lat.get('p95'), 0)}", _f(r["cpu_percent"], 0),
                     f"{r['rss_peak_mb']:.0f} (+{r.get('rss_growth_mb', 0):.0f})"])
    return markdown_table(["model", "backend", "precision", "size", "source", "FPS", "dropped", "latency p50/p95 ms",
                   "CPU %", "RSS MB (growth)"], rows)


def verdict_table(results: dict) -> list[str]:
    rows = []
    for r in fps_rows(results, "verdict"):
        extra = [r.get(k) or "-" for k in sorted(k for k in r if k.startswith("max_size_"))]
        rows.append([r["model"], r["backend"], r["precision"], r["size"], _f(r.get("fps")),
                     ("yes" if r["meets"] else "no") + f" (target {r['target_fps']:g})", *extra])
    targets = sorted({k for r in fps_rows(results, "verdict") for k in r if k.startswith("max_size_")})
    labels = [f"largest size at {k.removeprefix('max_size_').replace('fps', ' FPS')}" for k in targets]
    return markdown_table(["model", "backend", "precision", "size", "end-to-end FPS", "real time", *labels], rows)


def quality_table(results: dict) -> list[str]:
    rows = quality_rows(results)
    levels = list(dict.fromkeys(r["level"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["level"]): r for r in rows}
    body = []
    for m in methods:
        line = [m]
        for lv in levels:
            r = cell.get((m, lv))
            line.append(f"{r['ssim']:.3f} / {r['psnr']:.2f}" if r else "-")
        body.append(line)
    return markdown_table(["method", *[f"{lv} SSIM / PSNR dB" for lv in levels]], body)


def below_input_rows(results: dict) -> list[dict]:
    """Per method and level: how many images score a lower SSIM than their blurred input, and the worst gap."""
    rows = quality_rows(results)
    base = {r["level"]: r.get("images", {}) for r in rows if r["method"] == "blurred input"}
    out = []
    for r in rows:
        if r.get("kind") == "baseline" or r["level"] not in base or not r.get("images"):
            continue
        gaps = {k: v["ssim"] - base[r["level"]][k]["ssim"] for k, v in r["images"].items() if k in base[r["level"]]}
        if gaps:
            out.append({"method": r["method"], "level": r["level"], "below": sum(g < 0 for g in gaps.values()),
                        "count": len(gaps), "worst": min(gaps.values())})
    return out


def below_input_table(results: dict) -> list[str]:
    body = [[r["method"], r["level"], f"{r['below']} of {r['count']}", f"{r['worst']:+.4f}"] for r in below_input_rows(results)]
    return markdown_table(["method", "level", "images below the blurred input", "worst SSIM gap"], body)


def machine_line(m: dict) -> str:
    """The 'Machine: ...' sentence of a report, from results['machine']."""
    return (f"Machine: {m.get('cpu_model')} ({m.get('vendor')}), {m.get('physical_cores')} physical / "
            f"{m.get('logical_cores')} logical cores usable, {m.get('frequency_ghz')} GHz ({m.get('frequency_source')}); "
            f"ISA: {', '.join(m.get('flags', []))}; {m.get('os')}, Python {m.get('python')}."
            + (f" oneDNN capped at {m['isa_cap']} (ONEDNN_MAX_CPU_ISA; PyTorch also by ATEN_CPU_CAPABILITY) to stand in "
               f"for that CPU class: OpenVINO's convolutions and elementwise kernels and PyTorch's kernels use only its "
               f"instructions, OpenVINO's own reduce, FakeQuantize and depth-to-space kernels still the machine's full "
               f"ISA ({', '.join(m.get('flags_full') or [])})."
               if m.get("isa_cap") else "")
            + (f" Load average at start (1/5/15 min): {m['load_average']}." if m.get("load_average") else ""))


def render_markdown(results: dict) -> str:
    m = results.get("machine", {})
    peak = m.get("peak", {})
    lines = [f"# edgesharp benchmark ({results.get('created', '')})", ""]
    if m:
        lines += [
            machine_line(m),
            "",
            f"Theoretical peak: {peak.get('fp32_gmacs')} GMAC/s fp32, {peak.get('int8_gmacs')} GMAC/s int8 "
            f"({peak.get('formula')}; {peak.get('simd')}, {peak.get('fma_units')} FMA units, "
            f"{peak.get('fp32_lanes')} fp32 lanes). Libraries: "
            + ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items()) + ".",
            "",
        ]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    if fps_rows(results, "model"):
        lines += ["## Model-only speed", "",
                  "Median FPS of repeated timed windows after warm-up (spread = (max - min) / median); sync = one "
                  "request with the latency hint, async = N requests in flight. GMAC/s = FPS x MACs per padded "
                  "frame; % peak against the fp32 peak (int8 rows: the int8 peak).", "", *model_table(results), ""]
    if fps_rows(results, "e2e"):
        lines += ["## End to end (the `run` pipeline into a null sink)", "",
                  "A live source drops frames when the pipeline cannot keep up; CPU % is for the whole process "
                  "(100 = one core); RSS is the process's peak (growth during the run in brackets).", "",
                  *e2e_table(results), ""]
    if fps_rows(results, "verdict"):
        lines += ["## Real-time verdict", "", *verdict_table(results), ""]
    checks = fps_rows(results, "crosscheck")
    if checks:
        lines += ["## Cross-check with OpenVINO's benchmark_app", "", *markdown_table(
            ["model", "size", "mode", "edgesharp FPS", "benchmark_app FPS", "ratio", "within 15%"],
            [[c["model"], c["size"], c["mode"], _f(c.get("fps"), 2), _f(c.get("benchmark_app_fps"), 2),
              _f(c.get("ratio"), 3), c.get("error") or ("yes" if c.get("within_15pct") else "no")] for c in checks]), ""]
    if quality_rows(results):
        q = results["quality"]
        lines += ["## Quality", "",
                  f"Mean SSIM / PSNR over {q.get('source')} ({', '.join(f'{k}: {len(v)}' for k, v in q.get('images', {}).items())} "
                  f"images), degradation seed {q.get('seed')}. Unsharp mask settings (tuned on the package "
                  f"photographs): {json.dumps(q.get('unsharp_params'))}"
                  + (f"; blind, one setting for every level: {json.dumps(q['unsharp_blind'])}" if q.get("unsharp_blind") else "")
                  + ".", "", *quality_table(results), ""]
        if below_input_rows(results):
            lines += ["Per image, against the blurred input (a sharpener should never make a frame worse):", "",
                      *below_input_table(results), ""]
        if q.get("sheet"):
            lines += [f"![comparison sheet]({Path(q['sheet']).name})", ""]
    for chart in results.get("charts", []):
        lines += [f"![{Path(chart).stem}]({Path(chart).name})", ""]
    return "\n".join(lines)


def write_markdown(out_dir: Path, results: dict) -> Path:
    path = out_dir / "report.md"
    path.write_text(render_markdown(results))
    return path


# -- charts -------------------------------------------------------------------------------------------------

def pyplot():
    from edgesharp.edge.extras import require

    matplotlib = require("matplotlib", "benchmark charts", extra="bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_charts(out_dir: Path, results: dict) -> list[str]:
    """fps.png, ssim.png, quality_vs_fps.png (those the results have data for); returns their paths."""
    written = []
    model = [r for r in fps_rows(results, "model") if r.get("fps")]
    quality = quality_rows(results)
    if model:
        plt = pyplot()
        modes = sorted({r["mode"] for r in model})
        fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4), squeeze=False)
        for ax, mode in zip(axes[0], modes, strict=True):
            rows = [r for r in model if r["mode"] == mode]
            one_model = len({r["model"] for r in rows}) == 1

            def label(r: dict, one_model: bool = one_model) -> str:
                return f"{r['backend']} {r['precision']}" if one_model else f"{r['model']}\n{r['backend']} {r['precision']}"

            configs = list(dict.fromkeys(label(r) for r in rows))
            sizes = list(dict.fromkeys(r["size"] for r in rows))
            width = 0.8 / max(1, len(sizes))
            for j, size in enumerate(sizes):
                vals = {label(r): r["fps"] for r in rows if r["size"] == size}
                ax.bar([i + j * width for i in range(len(configs))], [vals.get(c, 0) for c in configs], width, label=size)
            ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(configs))], configs, fontsize=7)
            ax.tick_params(axis="x", labelrotation=20)
            ax.set_ylabel("FPS (model only)")
            ax.set_title(mode + (f" ({rows[0]['model']})" if one_model else ""))
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "fps.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    if quality:
        plt = pyplot()
        levels = list(dict.fromkeys(r["level"] for r in quality))
        methods = list(dict.fromkeys(r["method"] for r in quality))
        cell = {(r["method"], r["level"]): r["ssim"] for r in quality}
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(levels) * len(methods) / 3), 4))
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            ax.bar([i + j * width for i in range(len(levels))], [cell.get((m, lv), 0) for lv in levels], width, label=m)
        ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(levels))], levels)
        lo = min(cell.values())
        ax.set_ylim(max(0.0, lo - 0.05), 1.0)
        ax.set_ylabel("SSIM")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "ssim.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    points = scatter_points(results)
    if points:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, fps, ssim in points:
            ax.scatter(fps, ssim)
            ax.annotate(label, (fps, ssim), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("FPS (model only, best mode, largest size measured)")
        ax.set_ylabel("SSIM (mean over levels)")
        fig.tight_layout()
        path = out_dir / "quality_vs_fps.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def scatter_points(results: dict) -> list[tuple[str, float, float]]:
    """(label, FPS, mean SSIM over levels) of every student configuration with both numbers."""
    model = [r for r in fps_rows(results, "model") if r.get("fps")]
    if not model:
        return []
    largest = max(model, key=lambda r: _pixels(r["size"]))["size"]
    best: dict[tuple, float] = {}
    for r in model:
        if r["size"] == largest:
            key = (r["model"], r["backend"], r["precision"])
            best[key] = max(best.get(key, 0.0), r["fps"])
    ssims: dict[tuple, list[float]] = {}
    for r in quality_rows(results):
        if r["kind"] == "student" and r["level"] != "pairs":
            ssims.setdefault((r["model"], r["backend"], r["precision"]), []).append(r["ssim"])
    return [(f"{k[0]} {k[1]} {k[2]}", best[k], sum(v) / len(v)) for k, v in ssims.items() if k in best]


def _pixels(size: str | None) -> int:
    if not size:
        return 0
    w, h = size.split("x")
    return int(w) * int(h)


# -- comparing runs -----------------------------------------------------------------------------------------

def compare(new: dict, old: dict) -> list[dict]:
    """Rows present in both runs: FPS ratio new/old for speed rows, SSIM/PSNR difference for quality rows."""
    old_rows = {row_key(r): r for r in [*(old.get("fps") or []), *quality_rows(old)]}
    out = []
    for r in [*(new.get("fps") or []), *quality_rows(new)]:
        o = old_rows.get(row_key(r))
        if o is None:
            continue
        if r.get("suite") == "quality":
            out.append({"key": row_key(r), "ssim_new": r["ssim"], "ssim_old": o["ssim"],
                        "ssim_delta": round(r["ssim"] - o["ssim"], 4), "psnr_delta": round(r["psnr"] - o["psnr"], 3)})
        elif r.get("fps") and o.get("fps"):
            out.append({"key": row_key(r), "fps_new": r["fps"], "fps_old": o["fps"], "ratio": round(r["fps"] / o["fps"], 3)})
    return out


def format_comparison(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no rows in common with the earlier run"]
    lines = []
    for c in rows:
        if "ratio" in c:
            lines.append(f"{c['key']}: {c['fps_old']:.2f} -> {c['fps_new']:.2f} FPS  x{c['ratio']:.2f}")
        else:
            lines.append(f"{c['key']}: SSIM {c['ssim_old']:.4f} -> {c['ssim_new']:.4f} ({c['ssim_delta']:+.4f}), "
                         f"PSNR {c['psnr_delta']:+.2f} dB")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Re-render report.md beside each stored results.json (after the report format changes)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m edgesharp.benchmarks.report", description=main.__doc__)
    p.add_argument("results", nargs="+", type=Path, help="results.json files")
    args = p.parse_args(argv)
    for path in args.results:
        try:
            print(write_markdown(path.parent, read_results(path)))
        except EdgesharpError as exc:
            print(f"error: {exc}")
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
