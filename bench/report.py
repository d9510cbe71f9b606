"""Turn pytest-benchmark JSON into bench/report.md: the targets of issue 8 (PASS/MISS), medians and spreads, ratios
between client styles and against the SOAP floor, the scaling sweeps with their growth exponents, and PNG plots.

    python -m bench.report bench/.results/latest.json bench/report.md [--elapsed SECONDS]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import re
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
DOCKER_OPS = ("create", "start", "rename", "stop", "rm", "ps -a", "volume create", "run --rm echo")
TIME_BUDGET_S = 600

# Issue 8's targets. `why` is shown only on a MISS: what the profiles (docs/bench.md, "Profiles") say about it.
CYCLE_OPS_PER_S = 750
DOCKER_CREATE_MS = 30
PS_1000_MS = 300
VCH_START_1000_S = 5
MAX_EXPONENT = 1.1
WHY = {
    "cycle": "the sim is CPU-bound: {server_cpu:.1f} ms of server CPU per 5-op cycle ({server_share:.0%} of its "
             "{cycle_ms:.1f} ms), plus {client_cpu:.1f} ms of pyVmomi client CPU; 750 ops/s needs ≤ 6.7 ms per "
             "cycle in all. Four rounds of profiling (bench/profiles/cycle-server.txt) took the server from 12.4 ms "
             "per cycle; the last one moved what no task poll can read (events, the file layout, a reconfigure's "
             ".vmx, a destroyed VM's files) to after the poll that shows the task's end, while the client reads "
             "that answer, and replaced each call's sqlite commit with one append to a change log. What is left on "
             "the path: CreateVM's work outlasts the ~0.35 ms the client takes before it polls by about 1 ms "
             "(building the VM, its folder and two files at 0.05-0.1 ms of kernel metadata work each, encoding the "
             "new VM for the change log), and every call's ~0.1 ms of HTTP and dispatch. The same build measured "
             "6.5-7.4 ms per cycle from one run to the next on this machine (about ±8%), so a run this close to "
             "the goal can land on either side of it.",
    "create": "one create is {vim_calls} vim25 calls ({methods}): CreateVM_Task, then ReconfigVM_Task to the final "
              "name (DESIGN-DECISIONS §1's two-step naming), each read once when the sim has finished it; the "
              "rest is the sim computing the container watcher's updates (a scan of every VM under its lock) "
              "while those calls wait.",
    "ps": "ps -a makes no vim25 calls (it lists the port layer's cache): the time is building and JSON-encoding N "
          "summaries in the personality and decoding them in docker-py.",
    "vch": "the cache rebuild is most of it: py-spy shows SOAP (de)serialisation of the N containers' config and "
           "extraConfig (pyVmomi SerializeToStr in the sim, Deserialize in the appliance), after ~0.7 s of "
           "process start, imports and image/volume stores.",
    "exponent": "the time per item grows with N: a per-item cost that is not constant (see the sweep's table).",
}


def _rows(data: dict) -> list[dict]:
    rows = []
    for bench in data.get("benchmarks", []):
        stats, extra = bench["stats"], bench.get("extra_info", {})
        ops_per_round = extra.get("ops_per_round", 1)
        rows.append({
            "name": bench["name"], "group": bench.get("group") or "", "target": extra.get("target", "?"),
            "transport": extra.get("transport", "?"), "style": extra.get("style", bench["name"]),
            "kind": extra.get("kind", "vim25"), "sweep": extra.get("sweep"), "n": extra.get("n"),
            "median_ms": stats["median"] * 1e3, "iqr_ms": stats["iqr"] * 1e3, "min_ms": stats["min"] * 1e3,
            "max_ms": stats["max"] * 1e3, "stddev_ms": stats["stddev"] * 1e3, "rounds": stats["rounds"],
            "ops_per_round": ops_per_round, "vim_ops_per_s": ops_per_round / stats["median"],
            "op_median_ms": extra.get("op_median_ms"), "op_p95_ms": extra.get("op_p95_ms"), "extra": extra,
        })
    return rows


def _fmt(value, digits=2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def growth_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) against log(N)."""
    points = [(n, t) for n, t in points if n and n > 0 and t > 0]
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def _sweeps(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["kind"] == "sweep" and r["n"]:
            out.setdefault((r["sweep"], r["target"]), []).append(r)
    for points in out.values():
        points.sort(key=lambda r: r["n"])
    return out


def _calls(extra: dict, top: int = 4) -> str:
    calls = extra.get("vim25_calls")
    if calls is None:
        return "–"
    if not calls:
        return "**0**"
    ranked = sorted(calls.items(), key=lambda kv: -kv[1])
    rest = sum(c for _, c in ranked[top:])
    text = ", ".join(f"{m} {c}" for m, c in ranked[:top]) + (f", other {rest}" if rest else "")
    return f"**{sum(calls.values())}**: {text}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# -- the report ----------------------------------------------------------------------------------------------------
def render(data: dict, plots_dir: Path | None = None, elapsed: float | None = None,
           durations: dict[str, float] | None = None) -> str:
    rows = _rows(data)
    machine = data.get("machine_info", {})
    when = data.get("datetime", datetime.datetime.now(datetime.UTC).isoformat())
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `make bench` from pytest-benchmark results of {when}, on {machine.get('node', '?')} "
        f"({machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"{machine.get('cpu', {}).get('count', '?')} CPUs, Python {machine.get('python_version', '?')}). "
        "Client and server run in separate processes. How to run and what each benchmark does: "
        "[docs/bench.md](../docs/bench.md).",
        "",
    ]
    if elapsed is not None:
        verdict = "within" if elapsed <= TIME_BUDGET_S else "OVER"
        lines += [f"`make bench` (pytest + this report) took **{elapsed:.0f} s**, {verdict} the "
                  f"{TIME_BUDGET_S // 60}-minute budget."
                  + (" By suite, setup (servers, populations) included: "
                     + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(durations.items(), key=lambda kv: -kv[1]))
                     + "." if durations else ""), ""]
    if not rows:
        lines.append("No benchmark results.")
        return "\n".join(lines) + "\n"
    sweeps = _sweeps(rows)
    lines += _targets(rows, sweeps)
    lines += _vim25(rows)
    lines += _updates(rows)
    lines += _docker(rows)
    lines += _sweep_section(sweeps, plots_dir)
    lines += _notes(sweeps)
    if plots_dir is not None:
        plot = _plot_vim25(rows, plots_dir)
        if plot is not None:
            lines += ["## vim25 throughput plot", "", f"![vim25 ops/s by target and style]({plot})", ""]
    return "\n".join(lines) + "\n"


def _by(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _one(rows, **match):
    found = _by(rows, **match)
    return found[0] if found else None


def _targets(rows: list[dict], sweeps) -> list[str]:
    out = ["## Targets (issue 8)", "",
           "| target | goal | measured | result | why, when missed |", "|---|---|---:|---|---|"]
    floor = _one(rows, target="sim-http", style="floor") or _one(rows, style="floor")

    def add(name, goal, measured, ok, why):
        if measured is None:
            out.append(f"| {name} | {goal} | not measured | – | this run had no such benchmark |")
            return
        out.append(f"| {name} | {goal} | {measured} | {'PASS' if ok else '**MISS**'} | {'' if ok else why} |")

    cycle = _one(rows, target="sim-http", style="poll")
    if cycle:
        extra = cycle["extra"]
        server_cpu = extra.get("server_cpu_ms_per_round") or 0.0
        why = WHY["cycle"].format(server_cpu=server_cpu, server_share=server_cpu / cycle["median_ms"],
                                  cycle_ms=cycle["median_ms"], client_cpu=extra.get("client_cpu_ms_per_round") or 0.0)
        ratio = cycle["vim_ops_per_s"] / CYCLE_OPS_PER_S
        add("sim lean cycle (poll), HTTP", f"≥ {CYCLE_OPS_PER_S} ops/s (vcsim: 885)",
            f"{cycle['vim_ops_per_s']:.0f} ops/s ({ratio:.2f}× the goal)", ratio >= 1, why)
    else:
        add("sim lean cycle (poll), HTTP", f"≥ {CYCLE_OPS_PER_S} ops/s", None, False, "")

    create = _one(rows, kind="docker", style="create")
    if create:
        calls = create["extra"].get("vim25_calls") or {}
        why = WHY["create"].format(vim_calls=sum(calls.values()) or "several",
                                   methods=", ".join(f"{m} {c}" for m, c in calls.items()) or "not counted")
        add("docker create (docker-py) median", f"< {DOCKER_CREATE_MS} ms", f"{create['median_ms']:.1f} ms",
            create["median_ms"] < DOCKER_CREATE_MS, why)
    else:
        add("docker create (docker-py) median", f"< {DOCKER_CREATE_MS} ms", None, False, "")

    def at(sweep, n):
        for (name, _target), points in sweeps.items():
            if name == sweep:
                for p in points:
                    if p["n"] == n:
                        return p
        return None

    ps = at("docker ps -a", 1000)
    add("docker ps -a, 1,000 containers", f"< {PS_1000_MS} ms", ps and f"{ps['median_ms']:.1f} ms",
        bool(ps) and ps["median_ms"] < PS_1000_MS, WHY["ps"])
    vch = at("VCH start", 1000)
    add("VCH start, 1,000 containers", f"< {VCH_START_1000_S} s", vch and f"{vch['median_ms'] / 1e3:.2f} s",
        bool(vch) and vch["median_ms"] < VCH_START_1000_S * 1e3, WHY["vch"])
    for (name, target), points in sorted(sweeps.items()):
        exponent = growth_exponent([(p["n"], p["median_ms"]) for p in points])
        span = f"N={points[0]['n']:,}..{points[-1]['n']:,}"
        add(f"growth exponent: {name} ({target})", f"≤ {MAX_EXPONENT}",
            None if exponent is None else f"{exponent:.2f} ({span})",
            exponent is not None and exponent <= MAX_EXPONENT, WHY["exponent"])
    out.append("")
    if floor:
        out += [f"For scale: one vim25 round trip (CurrentTime, the floor) is {floor['median_ms']:.2f} ms on "
                f"{floor['target']}.", ""]
    return out


def _vim25(rows: list[dict]) -> list[str]:
    vim = [r for r in rows if r["kind"] == "vim25"]
    if not vim:
        return []
    lines = ["## vim25 round trips through pyVmomi", "",
             "Styles: **floor** = `si.CurrentTime()`; **connect** = `SmartConnect` + `Disconnect`; the VM cycle "
             "(CreateVM_Task → ReconfigVM_Task rename → PowerOnVM_Task → PowerOffVM_Task → Destroy_Task) waiting by "
             "**poll** (the lean client: RetrievePropertiesEx of the task's info until final), **wait** (a property "
             "filter + WaitForUpdatesEx, govmomi's way) or **pyvim** (`pyVim.task.WaitForTask`). vim25 ops/s counts "
             "the 5 task operations of a cycle.",
             "",
             "| target | style | median ms | IQR ms | min ms | max ms | rounds | vim25 ops/s | server CPU ms/round "
             "| client CPU ms/round | vcsim (spec §3) | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = {"floor": 0, "connect": 1, "poll": 2, "wait": 3, "pyvim": 4}
    vim.sort(key=lambda r: (r["target"], order.get(r["style"], 9), r["name"]))
    for r in vim:
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
                     f"{_fmt(r['vim_ops_per_s'], 0)} | {_fmt(r['extra'].get('server_cpu_ms_per_round'))} | "
                     f"{_fmt(r['extra'].get('client_cpu_ms_per_round'))} | {ref_text} | "
                     f"{_fmt(ratio)}{'×' if ratio else ''} |")
    lines += ["", "ratio = our throughput / vcsim's (above 1 is faster than vcsim); for floor and connect, "
                  "vcsim's median / ours. CPU per round: the server's from /proc (the sim is our child process), "
                  "the client's from `time.process_time()` over the same rounds.", ""]
    cycles = [r for r in vim if r["op_median_ms"]]
    if cycles:
        lines += ["### Per operation (median, p95 in ms, from call to observed completion)", "",
                  "| target | style | " + " | ".join(OPS) + " |", "|---|---|" + "---:|" * len(OPS)]
        for r in cycles:
            cells = [f"{_fmt(r['op_median_ms'].get(op), 2)} ({_fmt((r['op_p95_ms'] or {}).get(op), 2)})"
                     for op in OPS]
            lines.append(f"| {r['target']} | {r['style']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _ratios(vim)
    return lines


def _ratios(rows: list[dict]) -> list[str]:
    by = {(r["target"], r["style"]): r for r in rows}
    out = []
    for target in sorted({r["target"] for r in rows}):
        lean, pyvim, wait = by.get((target, "poll")), by.get((target, "pyvim")), by.get((target, "wait"))
        if lean and pyvim:
            out.append(f"- {target}: **pyVim WaitForTask / lean (poll) cycle time = "
                       f"{pyvim['median_ms'] / lean['median_ms']:.2f}**"
                       + (f"; WaitForUpdatesEx (wait) / poll = {wait['median_ms'] / lean['median_ms']:.2f}"
                          if wait else ""))
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
    return (["### Ratios", ""] + out + [""]) if out else []


def _updates(rows: list[dict]) -> list[str]:
    updates = _by(rows, kind="updates")
    if not updates:
        return []
    lines = ["## WaitForUpdatesEx latency", "",
             "From the ReconfigVM_Task (rename) call on one connection until a watcher already waiting in "
             "WaitForUpdatesEx on a second connection has the new name.", "",
             "| target | median ms | IQR ms | min ms | max ms | rounds | × CurrentTime floor |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in updates:
        floor = _one(rows, target=r["target"], style="floor")
        lines.append(f"| {r['target']} | {_fmt(r['median_ms'], 3)} | {_fmt(r['iqr_ms'], 3)} | "
                     f"{_fmt(r['min_ms'], 3)} | {_fmt(r['max_ms'], 3)} | {r['rounds']} | "
                     f"{_fmt(floor and r['median_ms'] / floor['median_ms'], 1)} |")
    return lines + [""]


def _docker(rows: list[dict]) -> list[str]:
    docker = _by(rows, kind="docker")
    if not docker:
        return []
    floor = _one(rows, target="sim-http", style="floor") or _one(rows, style="floor")
    cycle = _one(rows, target="sim-http", style="poll")
    per_vim_op = cycle["median_ms"] / cycle["ops_per_round"] if cycle else None
    lines = ["## Docker API through docker-py", "",
             f"Each op timed alone against {docker[0]['target']} (setup such as creating or starting the container "
             "is untimed). `ps -a` here lists the N containers the ops before it left; the sweeps below do "
             "N = 10..1,000. `run --rm echo` is docker-py's `containers.run(..., remove=True)`: create, start, "
             "wait, logs (the output the tether wrote), remove.", "",
             "| op | median ms | IQR ms | min ms | max ms | rounds | × CurrentTime floor | × one lean vim25 task op "
             "| vim25 calls of one op (sim counts) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    docker.sort(key=lambda r: DOCKER_OPS.index(r["style"]) if r["style"] in DOCKER_OPS else 99)
    for r in docker:
        label = r["style"] + (f" (N={r['n']})" if r["n"] is not None else "")
        lines.append(f"| {label} | {_fmt(r['median_ms'], 2)} | {_fmt(r['iqr_ms'], 2)} | {_fmt(r['min_ms'], 2)} "
                     f"| {_fmt(r['max_ms'], 2)} | {r['rounds']} | "
                     f"{_fmt(floor and r['median_ms'] / floor['median_ms'], 1)} | "
                     f"{_fmt(per_vim_op and r['median_ms'] / per_vim_op, 1)} | {_calls(r['extra'])} |")
    return lines + ["", "The × columns set each Docker op against the sim-http vim25 numbers of the same run. The "
                        "calls column is what the sim served (its `/_sim/counts`) during one more run of the op "
                        "after the benchmark: the vim25 work behind one Docker request.", ""]


def _sweep_section(sweeps, plots_dir: Path | None) -> list[str]:
    if not sweeps:
        return []
    lines = ["## Scaling sweeps", "",
             "Each point is the median of its rounds; the growth exponent is the least-squares slope of log(time) "
             "against log(N) over all points (1 = linear). The local exponent is the slope between the last two "
             "points, where a fixed per-call cost weighs least. Setup is the time spent growing the population to N "
             "(docker-py creates or CreateVM_Task from 4 threads), not part of any timing.", ""]
    for (name, target), points in sorted(sweeps.items()):
        exponent = growth_exponent([(p["n"], p["median_ms"]) for p in points])
        local = growth_exponent([(p["n"], p["median_ms"]) for p in points[-2:]])
        lines += [f"### {name} ({target})", "",
                  f"Growth exponent **{_fmt(exponent)}** (local, last two points: {_fmt(local)}).", "",
                  "| N | median ms | IQR ms | min ms | max ms | rounds | µs per item | setup s | vim25 calls of one |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for p in points:
            extra = p["extra"]
            lines.append(f"| {p['n']:,} | {_fmt(p['median_ms'], 2)} | {_fmt(p['iqr_ms'], 2)} | "
                         f"{_fmt(p['min_ms'], 2)} | {_fmt(p['max_ms'], 2)} | {p['rounds']} | "
                         f"{_fmt(p['median_ms'] * 1e3 / p['n'], 1)} | {_fmt(extra.get('setup_s'), 1)} | "
                         f"{_calls(extra)} |")
        lines.append("")
        booted = [p for p in points if p["extra"].get("boot_phases_s")]
        if booted:
            names = list(booted[0]["extra"]["boot_phases_s"])
            lines += ["Where a VCH start goes (medians, seconds, from the appliance's log lines):", "",
                      "| N | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
            for p in booted:
                lines.append(f"| {p['n']:,} | " + " | ".join(f"{p['extra']['boot_phases_s'].get(k, 0):.2f}"
                                                             for k in names) + " |")
            lines.append("")
        stops = [(p["n"], sorted(p["extra"]["stop_s"])) for p in points if p["extra"].get("stop_s")]
        if stops:
            lines += ["Untimed, for the record: appliance power-off until its process was gone (median / max): "
                      + "; ".join(f"N={n:,}: {s[len(s) // 2]:.2f} / {s[-1]:.2f} s" for n, s in stops) + ".", ""]
        if plots_dir is not None:
            plot = _plot_sweep(name, target, points, exponent, plots_dir)
            if plot:
                lines += [f"![{name} vs N]({plot})", ""]
    if plots_dir is not None:
        plot = _plot_all_sweeps(sweeps, plots_dir)
        if plot:
            lines += ["### All sweeps together", "", f"![growth of every sweep]({plot})", ""]
    return lines


def _notes(sweeps) -> list[str]:
    out = ["## Notes", "",
           "- The sweeps' containers are created with `--net none` (`BENCH_SWEEP_NETWORK`); the default bridge "
           "would hold them too: it is a /18 of the VCH's range (16,381 addresses) since it outgrew its /24.",
           "- The property sweep's VMs all go in one folder: CreateVM_Task no longer grows with the folder (a name "
           "index) nor with the inventory (list members are saved a row each), so setup per VM (below) stays flat.",
           "- N = 10,000 runs for RetrievePropertiesEx on sim-http only; the Docker sweeps stop at 1,000: at "
           "~25 ms per docker create, 10,000 containers would take ~4 minutes to make, past the time budget.",
           "- Profiles: `python -m bench.profile` (pyinstrument, the lean cycle on both sides: "
           "bench/profiles/cycle-*.txt); docker create and a VCH start with 1,000 containers were profiled with py-spy "
           "(not a project dependency) on the appliance and the sim: bench/profiles/docker-create-*.txt, "
           "vch-start-1000.txt. The \"why\" column sums them up."]
    for (name, target), points in sorted(sweeps.items()):
        if name == "RetrievePropertiesEx" and len(points) >= 2:
            per_vm, prev = [], 0
            for p in points:
                if p["extra"].get("setup_s") is not None and p["n"] > prev:
                    per_vm.append(f"{prev:,}→{p['n']:,}: {p['extra']['setup_s'] / (p['n'] - prev) * 1e3:.1f} ms")
                prev = p["n"]
            out.append(f"- Setup per VM ({target}, 4 threads): " + "; ".join(per_vm) + ".")
        if name == "docker rename" and len(points) >= 2 and points[-1]["n"] > points[0]["n"]:
            growth = (points[-1]["median_ms"] - points[0]["median_ms"]) / (points[-1]["n"] - points[0]["n"]) * 1e3
            calls = {sum((p["extra"].get("vim25_calls") or {}).values()) for p in points}
            out.append(f"- docker rename ({target}) grows from {points[0]['median_ms']:.0f} ms at N={points[0]['n']:,} "
                       f"to {points[-1]['median_ms']:.0f} ms at N={points[-1]['n']:,} (~{growth:.0f} µs per "
                       f"container) with the same vim25 calls ({', '.join(map(str, sorted(calls)))}): a scan of all "
                       "containers inside the VCH's rename path, within the exponent target but worth a look in "
                       "step 4.")
        if name == "VCH start":
            worst = max((max(p["extra"].get("stop_s") or [0]) for p in points), default=0)
            if worst > 4:
                out.append(f"- An appliance power-off took up to {worst:.1f} s before its process was gone (the "
                           "sim's SIGTERM grace is 5 s): a PowerOnVM_Task issued meanwhile waits for it.")
    return out + [""]


# -- plots ---------------------------------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plain_ticks(ax, ns) -> None:
    """Log axes labelled with plain numbers: the sweep's N on x, %g on y."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xticks(ns, [f"{n:,}" for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_sweep(name, target, points, exponent, plots_dir: Path) -> str | None:
    plt = _pyplot()
    if plt is None:
        return None
    plots_dir.mkdir(parents=True, exist_ok=True)
    ns = [p["n"] for p in points]
    med = [p["median_ms"] for p in points]
    lo = [p["median_ms"] - p["min_ms"] for p in points]
    hi = [p["max_ms"] - p["median_ms"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(ns, med, yerr=[lo, hi], fmt="o-", capsize=4, color="#4c72b0", label="median (bars: min..max)")
    if exponent is not None and len(ns) >= 2:
        # the fitted power law through the geometric mean of the points
        gx = math.exp(sum(math.log(n) for n in ns) / len(ns))
        gy = math.exp(sum(math.log(t) for t in med) / len(med))
        ax.plot(ns, [gy * (n / gx) ** exponent for n in ns], "--", color="#dd8452",
                label=f"fit: time ∝ N^{exponent:.2f}")
        ax.plot(ns, [med[0] * n / ns[0] for n in ns], ":", color="gray", label="linear from the first point")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax, ns)
    ax.set_xlabel("N")
    ax.set_ylabel("ms")
    ax.set_title(f"{name} ({target})")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = plots_dir / f"sweep_{_slug(name)}_{_slug(target)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"{plots_dir.name}/{path.name}"


def _plot_all_sweeps(sweeps, plots_dir: Path) -> str | None:
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    all_ns = sorted({p["n"] for points in sweeps.values() for p in points})
    for (name, target), points in sorted(sweeps.items()):
        ax.plot([p["n"] for p in points], [p["median_ms"] / points[0]["median_ms"] for p in points], "o-",
                label=f"{name} ({target})")
    if len(all_ns) >= 2:
        ax.plot(all_ns, [n / all_ns[0] for n in all_ns], ":", color="gray", label="linear")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax, all_ns)
    ax.set_xlabel("N")
    ax.set_ylabel("median time / median at the smallest N")
    ax.set_title("Growth of every sweep (below the dotted line = sublinear)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = plots_dir / "sweeps_growth.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"{plots_dir.name}/{path.name}"


def _plot_vim25(rows: list[dict], plots_dir: Path) -> str | None:
    plt = _pyplot()
    shown = [r for r in rows if r["kind"] == "vim25" and r["style"] in ("poll", "wait", "pyvim")]
    if plt is None or not shown:
        return None
    plots_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{r['target']}\n{r['style']}" for r in shown]
    ax.bar(range(len(shown)), [r["vim_ops_per_s"] for r in shown], color="#4c72b0")
    ax.axhline(CYCLE_OPS_PER_S, color="#c44e52", linestyle="--", label=f"goal {CYCLE_OPS_PER_S} ops/s (http, poll)")
    ax.set_xticks(range(len(shown)), labels, fontsize=7)
    ax.set_ylabel("vim25 task ops/s (median)")
    ax.set_title("VM cycle throughput, one client")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = plots_dir / "vim25_ops.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"{plots_dir.name}/{path.name}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("results", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--elapsed", type=float, default=None, help="seconds `make bench` took, for the report")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    data = json.loads(args.results.read_text())
    plots = args.report.parent / "plots"
    if plots.is_dir():
        for old in plots.glob("*.png"):
            old.unlink()
    durations_path = args.results.parent / "durations.json"
    durations = None
    if durations_path.exists() and durations_path.stat().st_mtime >= args.results.stat().st_mtime - 600:
        durations = json.loads(durations_path.read_text())
    args.report.write_text(render(data, plots, args.elapsed, durations))
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
