"""Write the README's performance and quality tables from stored benchmark results (never typed by hand).

The target file holds marker comments; everything between a pair is replaced:

    <!-- bench:performance:start --> ... <!-- bench:performance:end -->
    <!-- bench:quality:start --> ... <!-- bench:quality:end -->

    python -m edgesharp.benchmarks.readme_tables README.md                       # newest benchmarks/results/*/results.json
    python -m edgesharp.benchmarks.readme_tables README.md --results benchmarks/results/amd-epyc-2c/results.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgesharp.benchmarks import report
from edgesharp.edge.errors import EdgesharpError

RESULTS_ROOT = Path(__file__).resolve().parent / "results"
SECTIONS = ("performance", "quality")


def markers(section: str) -> tuple[str, str]:
    return f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"


def latest_results(root: Path = RESULTS_ROOT) -> Path:
    """The stored results.json with the newest `created` date."""
    found = sorted(root.glob("*/results.json"))
    if not found:
        raise EdgesharpError(f"{root}: no stored results (run 'edgesharp bench all --store')")
    return max(found, key=lambda p: report.read_results(p).get("created", ""))


def performance_markdown(results: dict, source: str) -> str:
    m = results.get("machine", {})
    peak = m.get("peak", {})
    cap = f", oneDNN and PyTorch capped at {m['isa_cap']} (`--isa-cap`)" if m.get("isa_cap") else ""
    lines = [f"Measured on {m.get('cpu_model')}, {m.get('physical_cores')} cores at {m.get('frequency_ghz')} GHz{cap} "
             f"(peak {peak.get('fp32_gmacs')} GMAC/s fp32), OpenVINO {m.get('libraries', {}).get('openvino', '?')}, "
             f"{results.get('created', '')[:10]}; from `{source}`.", ""]
    ref = report.pytorch_reference(results)
    rows = []
    for r in report.fps_rows(results, "model"):
        if not r.get("fps"):
            continue
        base = ref.get((r["model"], r["size"]))
        rows.append([r["model"], r["backend"], report._precision_label(r), r["size"], f"{r['mode']} x{r.get('requests', 1)}",
                     f"{r['fps']:.2f}", f"{r['fps'] / base:.2f}x" if base else "-"])
    if rows:
        lines += report.markdown_table(["model", "backend", "precision", "size", "mode", "model-only FPS", "vs PyTorch"], rows)
        lines.append("")
    verdicts = report.fps_rows(results, "verdict")
    if verdicts:
        lines += report.verdict_table(results)
    return "\n".join(lines).rstrip()


def quality_markdown(results: dict, source: str) -> str:
    q = results.get("quality") or {}
    if not q.get("rows"):
        return f"No quality results in `{source}`."
    head = f"Mean SSIM / PSNR over {q.get('source')}, degradation seed {q.get('seed')}; from `{source}`."
    return "\n".join([head, "", *report.quality_table(results)])


def replace_between(text: str, section: str, body: str, path: Path) -> str:
    start, end = markers(section)
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise EdgesharpError(f"{path}: markers {start} ... {end} not found (add them where the {section} table goes)")
    return text[: i + len(start)] + "\n" + body + "\n" + text[j:]


def only_models(results: dict, models: list[str]) -> dict:
    """`results` with the speed rows of `models` only (all when empty); an unknown name is an error."""
    if not models:
        return results
    known = {r.get("model") for r in results.get("fps") or []}
    unknown = [m for m in models if m not in known]
    if unknown:
        raise EdgesharpError(f"--models: no speed rows for {', '.join(unknown)} (the results have {', '.join(sorted(known))})")
    return {**results, "fps": [r for r in results.get("fps") or [] if r.get("model") in models]}


def update_file(target: Path, results_path: Path, sections=SECTIONS, models: list[str] | None = None) -> list[str]:
    """Rewrite the marked sections of `target` (speed rows of `models` only, when given); returns the sections."""
    results = only_models(report.read_results(results_path), models or [])
    try:
        text = target.read_text()
    except FileNotFoundError:
        raise EdgesharpError(f"{target}: no such file") from None
    try:
        source = str(results_path.resolve().relative_to(target.resolve().parent))
    except ValueError:
        source = str(results_path)
    builders = {"performance": performance_markdown, "quality": quality_markdown}
    for section in sections:
        text = replace_between(text, section, builders[section](results, source), target)
    target.write_text(text)
    return list(sections)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="markdown file with the marker comments (e.g. README.md)")
    parser.add_argument("--results", type=Path, help="results.json (default: the newest under benchmarks/results/)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma list: performance,quality")
    parser.add_argument("--models", default="", help="comma list of model names whose speed rows to keep (default: all)")
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    try:
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            raise EdgesharpError(f"--sections: unknown {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
        written = update_file(args.file, args.results or latest_results(), sections,
                              [m for m in args.models.split(",") if m])
    except EdgesharpError as exc:
        print(f"readme_tables: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
