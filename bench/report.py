"""Turn pytest-benchmark JSON into bench/report.md: medians and spreads, ops/s, ratios, per-op breakdown, plots.

    python -m bench.report bench/.results/latest.json bench/report.md
"""
from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

# vcsim measured with the same cycle and client (spec/vim25-for-pyvmomi.md §3), for scale
VCSIM_REFERENCE = {
    ("https", "poll"): {"ops_per_s": 743, "server": "vcsim v0.52.0"},
    ("http", "poll"): {"ops_per_s": 885, "server": "vcsim v0.52.0"},
    ("https", "pyvim"): {"ops_per_s": 163, "server": "vcsim v0.52.0"},
    ("http", "pyvim"): {"ops_per_s": 164, "server": "vcsim v0.52.0"},
    ("https", "floor"): {"median_ms": 0.25, "server": "vcsim v0.52.0"},
    ("http", "floor"): {"median_ms": 0.25, "server": "vcsim v0.52.0"},
    ("https", "connect"): {"median_ms": 18.0, "server": "vcsim v0.52.0"},
    ("http", "connect"): {"median_ms": 11.0, "server": "vcsim v0.52.0"},
}
OPS = ("CreateVM_Task", "ReconfigVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "Destroy_Task")


def _rows(data: dict) -> list[dict]:
    rows = []
    for bench in data.get("benchmarks", []):
        stats, extra = bench["stats"], bench.get("extra_info", {})
        ops_per_round = extra.get("ops_per_round", 1)
        rows.append({
            "name": bench["name"], "group": bench.get("group") or "", "target": extra.get("target", "?"),
            "transport": extra.get("transport", "?"), "style": extra.get("style", bench["name"]),
            "median_ms": stats["median"] * 1e3, "iqr_ms": stats["iqr"] * 1e3, "min_ms": stats["min"] * 1e3,
            "max_ms": stats["max"] * 1e3, "stddev_ms": stats["stddev"] * 1e3, "rounds": stats["rounds"],
            "ops_per_round": ops_per_round, "vim_ops_per_s": ops_per_round / stats["median"],
            "op_median_ms": extra.get("op_median_ms"), "op_p95_ms": extra.get("op_p95_ms"),
        })
    return rows


def _fmt(value, digits=2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render(data: dict, plots_dir: Path | None = None) -> str:
    rows = _rows(data)
    machine = data.get("machine_info", {})
    when = data.get("datetime", datetime.datetime.now(datetime.UTC).isoformat())
    lines = [
        "# vim25 benchmark report",
        "",
        f"Generated from pytest-benchmark results of {when}, on {machine.get('node', '?')} "
        f"({machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"Python {machine.get('python_version', '?')}). Client and server run in separate processes.",
        "",
        "Styles: **floor** = `si.CurrentTime()`; **connect** = `SmartConnect` + `Disconnect`; the VM cycle "
        "(CreateVM_Task → ReconfigVM_Task rename → PowerOnVM_Task → PowerOffVM_Task → Destroy_Task) waiting by "
        "**poll** (RetrievePropertiesEx of the task's info), **wait** (a property filter + WaitForUpdatesEx) or "
        "**pyvim** (`pyVim.task.WaitForTask`).",
        "",
    ]
    if not rows:
        lines.append("No benchmark results.")
        return "\n".join(lines) + "\n"

    lines += ["## Results", "",
              "| target | style | median ms | IQR ms | min ms | max ms | rounds | vim25 ops/s "
              "| vcsim (spec §3) | ratio |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = {"floor": 0, "connect": 1, "poll": 2, "wait": 3, "pyvim": 4}
    rows.sort(key=lambda r: (r["target"], order.get(r["style"], 9), r["name"]))
    for r in rows:
        ref = VCSIM_REFERENCE.get((r["transport"], r["style"]))
        ref_text, ratio = "–", None
        if ref and "ops_per_s" in ref:
            ref_text = f"{ref['ops_per_s']} ops/s"
            ratio = r["vim_ops_per_s"] / ref["ops_per_s"]
        elif ref and "median_ms" in ref:
            ref_text = f"{ref['median_ms']} ms"
            ratio = ref["median_ms"] / r["median_ms"]
        lines.append(f"| {r['target']} | {r['style']} | {_fmt(r['median_ms'], 3)} | {_fmt(r['iqr_ms'], 3)} | "
                     f"{_fmt(r['min_ms'], 3)} | {_fmt(r['max_ms'], 3)} | {r['rounds']} | "
                     f"{_fmt(r['vim_ops_per_s'], 0)} | {ref_text} | {_fmt(ratio)}{'×' if ratio else ''} |")
    lines += ["", "ratio = our throughput / vcsim's (above 1 is faster than vcsim); for floor and connect, "
                  "vcsim's median / ours.", ""]

    cycles = [r for r in rows if r["op_median_ms"]]
    if cycles:
        lines += ["## Per operation (median, p95 in ms, from call to observed completion)", "",
                  "| target | style | " + " | ".join(OPS) + " |", "|---|---|" + "---:|" * len(OPS)]
        for r in cycles:
            cells = [f"{_fmt(r['op_median_ms'].get(op), 2)} ({_fmt((r['op_p95_ms'] or {}).get(op), 2)})"
                     for op in OPS]
            lines.append(f"| {r['target']} | {r['style']} | " + " | ".join(cells) + " |")
        lines.append("")

    lines += _ratios(rows)
    if plots_dir is not None:
        plot = _plot(rows, plots_dir)
        if plot is not None:
            lines += ["## Plot", "", f"![vim25 ops/s by target and style]({plot})", ""]
    return "\n".join(lines) + "\n"


def _ratios(rows: list[dict]) -> list[str]:
    by = {(r["target"], r["style"]): r for r in rows}
    out = []
    for target in sorted({r["target"] for r in rows}):
        floor = by.get((target, "floor"))
        for style in ("poll", "wait", "pyvim"):
            cycle = by.get((target, style))
            if floor and cycle:
                per_op = cycle["median_ms"] / cycle["ops_per_round"]
                out.append(f"- {target}, {style}: one task op costs {per_op:.2f} ms = "
                           f"{per_op / floor['median_ms']:.1f}× the CurrentTime floor")
    for style in ("floor", "connect", "poll", "wait", "pyvim"):
        http, https = by.get(("sim-http", style)), by.get(("sim-https", style))
        if http and https:
            out.append(f"- {style}: https/http median = {https['median_ms'] / http['median_ms']:.2f}")
    for target in sorted({r["target"] for r in rows}):
        lean, pyvim = by.get((target, "poll")), by.get((target, "pyvim"))
        if lean and pyvim:
            out.append(f"- {target}: pyvim/poll cycle time = {pyvim['median_ms'] / lean['median_ms']:.2f}")
    return (["## Ratios", ""] + out + [""]) if out else []


def _plot(rows: list[dict], plots_dir: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    shown = [r for r in rows if r["style"] in ("floor", "poll", "wait", "pyvim")]
    if not shown:
        return None
    plots_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{r['target']}\n{r['style']}" for r in shown]
    ax.bar(range(len(shown)), [r["vim_ops_per_s"] for r in shown], color="#4c72b0")
    ax.set_xticks(range(len(shown)), labels, fontsize=7)
    ax.set_ylabel("vim25 ops/s (median)")
    ax.set_title("vim25 throughput, one client")
    fig.tight_layout()
    path = plots_dir / "vim25_ops.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"{plots_dir.name}/{path.name}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.report RESULTS.json REPORT.md", file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    data = json.loads(source.read_text())
    target.write_text(render(data, target.parent / "plots"))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
