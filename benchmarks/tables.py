"""The benchmark's table of ratios and the conditions it was measured under."""

from __future__ import annotations

import logging

log = logging.getLogger("bench")


def table(results: dict) -> str:
    """The Markdown table: each figure with its same-run baseline and the ratio."""
    rows = ["| measure | value | baseline (same run) | ratio |", "|---|---|---|---|"]
    s = results.get("sweep")
    if s:
        new, old = s["new"], s["old"]
        n = f"{s['entries']} entries x {s['epochs']} epochs"
        rows += [
            f"| (a) cold `dvc repro -f`, {n}, one `train` + one `evaluate` process | "
            f"{new['cold_repro_s']:.1f} s | per-entry layout ({s['old_revision']}, "
            f"{old['stage_processes']} stage processes): {old['cold_repro_s']:.1f} s | "
            f"**{s['new_vs_old']:.2f}x** the time ({1 / s['new_vs_old']:.1f}x faster) |",
            f"| (a) cold `dvc repro -f`, one-process layout | {new['cold_repro_s']:.1f} s | "
            f"Σ pure training, each entry fit alone in one warm process: "
            f"{s['pure_training_s']:.1f} s | **{s['new_vs_pure_training']:.2f}x** |",
            f"| (a) cold `dvc repro -f`, per-entry layout | {old['cold_repro_s']:.1f} s | "
            f"Σ pure training: {s['pure_training_s']:.1f} s | {s['old_vs_pure_training']:.2f}x |",
        ]
        for kind in ("prepare", "train", "evaluate", "report"):
            a, b = new["by_stage"].get(kind), old["by_stage"].get(kind)
            if a and b:
                rows.append(
                    f"| — stage `{kind}`: wall (peak RSS) | {a['seconds']:.1f} s "
                    f"({a['peak_mib']:,.0f} MiB) | per-entry layout, {b['processes']} "
                    f"process(es): {b['seconds']:.1f} s ({b['peak_mib']:,.0f} MiB max) | "
                    f"{a['seconds'] / b['seconds']:.2f}x |"
                )
        rows.append(
            f"| — DVC outside the stages | {new['outside_stages_s']:.1f} s | per-entry layout: "
            f"{old['outside_stages_s']:.1f} s | "
            f"{new['outside_stages_s'] / max(old['outside_stages_s'], 1e-9):.2f}x |"
        )
    f = results.get("fused")
    if f:
        for key, label in (("default", ""), ("xla", ", `jit_compile=True`")):
            r = f.get(key)
            if r is None:
                continue
            if "error" in r:
                rows.append(f"| (b) fused `fit_towers`{label} | failed: {r['error']} | | |")
                continue
            rows.append(
                f"| (b) fused `fit_towers`, {len(f['towers'])} models x {f['epochs']} epochs"
                f"{label} | {r['fused_s']:.1f} s | each trained alone in turn, same process"
                f"{label}: {r['alone_total_s']:.1f} s | **{r['alone_total_s'] / r['fused_s']:.1f}x"
                f" faster** (max \\|Δw\\| {r['max_weight_difference']:.1g}) |"
            )
        if "fused_s" in f.get("xla", {}):
            d, x = f["default"], f["xla"]
            rows.append(
                f"| (b) `jit_compile=True` vs default (not used by the pipeline) | fused "
                f"{x['fused_s']:.1f} s, alone {x['alone_total_s']:.1f} s | fused "
                f"{d['fused_s']:.1f} s, alone {d['alone_total_s']:.1f} s | fused "
                f"{x['fused_s'] / d['fused_s']:.2f}x, alone "
                f"{x['alone_total_s'] / d['alone_total_s']:.2f}x the time |"
            )
    m = results.get("mlflow")
    if m:
        for store, label in (("sqlite", "local store (sqlite)"), ("http", "`mlflow server`, HTTP")):
            r = m[store]
            rows.append(
                f"| (c) `pipeline.tracking` calls in `train`, {label}, {r['tracking_calls']} "
                f"calls | {r['tracking_s']:.1f} s | the `train` body: {r['run_s']:.1f} s (fit "
                f"{r['fit_s']:.1f} s) | **{r['share_of_run']:.1%}** (with `import mlflow` "
                f"{r['mlflow_import_s']:.1f} s: {r['share_with_import']:.0%}) |"
            )
        setup = {store: m[store]["store_setup_s"] for store in ("sqlite", "http")}
        rows.append(
            "| — once per project, before its first sweep: creating the store and experiment "
            f"| sqlite {setup['sqlite']:.1f} s, HTTP {setup['http']:.1f} s "
            "| not in the shares above | |"
        )
        worst = max(m.values(), key=lambda r: r["tracking_s"])
        top = sorted(worst["tracking_s_by_call"].items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            "| — largest calls ("
            + ("HTTP" if worst is m["http"] else "sqlite")
            + ") | "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in top)
            + " | | |"
        )
    mem = results.get("memory")
    if mem:
        a, b = mem["sweep"], mem["seeds"]
        floor = mem["tensorflow_only_peak_rss_mib"]
        rows += [
            f"| (d) peak RSS of `train`, {a['models']} models | {a['peak_rss_mib']:,.0f} MiB | "
            f"a process that only imports TensorFlow: {floor:,.0f} MiB | "
            f"{a['peak_rss_mib'] / floor:.2f}x |",
            f"| (d) peak RSS of `train`, {b['models']} models (extra seeds) | "
            f"{b['peak_rss_mib']:,.0f} MiB | {a['models']} models: {a['peak_rss_mib']:,.0f} MiB | "
            f"{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x (+"
            f"{(b['peak_rss_mib'] - a['peak_rss_mib']) / (b['models'] - a['models']):.1f} "
            f"MiB per model) |",
        ]
    return "\n".join(rows)


def conditions(results: dict) -> str:
    m = results["machine"]
    start, end = m["load_average_at_start"][0], m.get("load_average_at_end", [float("nan")])[0]
    return (
        f"Measured on {m['cpus']} vCPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python "
        f"{m['python']}, Keras {m['keras']}, MLflow {m['mlflow']}. Shared machine: other "
        f"engineers' jobs ran on the same cores (1-min load average {start:.1f} at the start, "
        f"{end:.1f} at the end), so absolute seconds drift; compare the ratios."
    )
