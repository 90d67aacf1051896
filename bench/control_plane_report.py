"""bench/control_plane.py's figures from the probe's samples: the summary, its JSON and its figure."""

from __future__ import annotations

import statistics
from pathlib import Path

FINALISE_PHASES = ("end.finalise", "end.model", "end.plots", "end.test_scores", "end.mlflow")


def _at(samples: list[dict], t: float) -> dict:
    """The last sample taken at or before ``t`` (the first sample if none)."""
    before = [s for s in samples if s["t"] <= t]
    return before[-1] if before else samples[0]


def _slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3 or max(xs) == min(xs):
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def timeline(probe, lines) -> dict:
    """Seconds from the probe's start: first trial start, Tune's last trial end, the outbox drained,
    the ranking printed (finalise_all done), the registration, the champion printed, the end."""
    ph = probe.phases
    starts = [p["start"] for p in ph if p["phase"] == "tune.trial_start"]
    completes = [p["end"] for p in ph if p["phase"] == "tune.trial_complete"]
    finalised = [p["end"] for p in ph if p["phase"] == "end.finalise"]
    registered = [p for p in ph if p["phase"] == "register.champions"]
    said = [(t - probe.t0, line) for t, line in lines]
    return {"first_trial_start": min(starts, default=None), "tune_end": max(completes, default=None),
            "outbox_drained": max(finalised, default=None),
            "ranked_printed": next((t for t, line in said if "trials finished with a selected checkpoint" in line),
                                   None),
            "registration_start": registered[-1]["start"] if registered else None,
            "registration_s": registered[-1]["end"] - registered[-1]["start"] if registered else None,
            "champion_printed": next((t for t, line in said if line.startswith("registered ")), None),
            "end": probe.samples[-1]["t"]}


def tune_phase(samples: list[dict], start: float, end: float, windows: int = 8) -> dict:
    """Driver CPU per result (all threads but the outbox's writer), results and MLflow writes per
    second, from the first trial's start to Tune's last trial end; CPU per result in ``windows``."""
    a, b = _at(samples, start), _at(samples, end)
    results = b["results"] - a["results"]
    other = (b["cpu_s"] - a["cpu_s"]) - (b["writer_cpu_s"] - a["writer_cpu_s"])
    span = max(b["t"] - a["t"], 1e-9)
    inside = [s for s in samples if a["t"] <= s["t"] <= b["t"]]
    per_window = []
    for i in range(windows):
        lo, hi = inside[len(inside) * i // windows], inside[min(len(inside) - 1, len(inside) * (i + 1) // windows)]
        n = hi["results"] - lo["results"]
        if n > 0:
            cpu = (hi["cpu_s"] - lo["cpu_s"]) - (hi["writer_cpu_s"] - lo["writer_cpu_s"])
            per_window.append({"trials_completed": hi["trials_completed"], "results": hi["results"],
                               "cpu_ms_per_result": 1000 * cpu / n})
    rates = [(y["delivered"] - x["delivered"]) / (y["t"] - x["t"]) for x, y in zip(inside, inside[10:], strict=False)
             if y["t"] > x["t"]]
    return {"seconds": span, "results": results, "driver_cpu_s_without_writer": other,
            "cpu_ms_per_result": 1000 * other / results if results else None,
            "writer_cpu_s": b["writer_cpu_s"] - a["writer_cpu_s"],
            "server_cpu_s": b["server_cpu_s"] - a["server_cpu_s"],
            "results_per_s": results / span, "mlflow_writes_per_s": (b["delivered"] - a["delivered"]) / span,
            "mlflow_writes_per_s_peak_10_samples": max(rates, default=None), "cpu_ms_per_result_windows": per_window}


def memory(samples: list[dict], total_trials: int) -> dict:
    """RSS at fractions of the trials finalised, and its slope after warm-up: from the moment a quarter
    of the trials are finalised (every code path has run by then) to the end, against time and
    against trials finalised (the memory-heavy work: a model exported, plots drawn per trial)."""
    at = {}
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        hit = next((s for s in samples if s["finalised"] >= share * total_trials), samples[-1])
        at[f"{int(share * 100)}%"] = round(hit["rss_mb"], 1)
    warm = [s for s in samples if s["finalised"] >= 0.25 * total_trials]
    per_minute = _slope([s["t"] / 60 for s in warm], [s["rss_mb"] for s in warm])
    per_trial = _slope([s["finalised"] for s in warm], [s["rss_mb"] for s in warm])
    return {"rss_mb_at_trials_finalised": at, "rss_mb_max": max(s["rss_mb"] for s in samples),
            "after_warm_up_mb_per_minute": per_minute,
            "after_warm_up_mb_per_100_trials": None if per_trial is None else 100 * per_trial}


def backlog(samples: list[dict]) -> dict:
    queued = [s["starts"] + s["results"] - s["delivered"] for s in samples]
    waiting = [s["trials_completed"] - s["finalised"] for s in samples]
    return {"journaled_writes_queued_max": max(queued), "trials_awaiting_finalisation_max": max(waiting)}


def finalisation(phases: list[dict]) -> dict:
    out = {}
    for name in FINALISE_PHASES:
        took = [p["end"] - p["start"] for p in phases if p["phase"] == name]
        if took:
            out[name] = {"count": len(took), "mean_s": statistics.fmean(took), "median_s": statistics.median(took)}
    return out


def summarise(probe, lines, code: int, args) -> dict:
    import platform as host

    times = timeline(probe, lines)
    samples, last = probe.samples, probe.samples[-1]
    tune = tune_phase(samples, times["first_trial_start"] or 0.0, times["tune_end"] or last["t"])
    return {
        "exit_code": code,
        "size": {"trials": args.trials, "epochs": args.epochs, "concurrency": args.concurrency,
                 "asha": {"grace_period": args.grace_period, "reduction_factor": args.reduction_factor},
                 "epoch_scale": args.epoch_scale, "table": args.table},
        "machine": f"{host.node()}: {host.processor() or host.machine()}, {_cores()} cores (shared)",
        "totals": {k: last[k] for k in ("starts", "results", "delivered", "trials_started", "trials_completed",
                                        "finalised")},
        "timeline_s": times, "tune": tune, "memory": memory(samples, args.trials),
        "backlog": backlog(samples), "finalisation": finalisation(probe.phases),
        "writer_cpu_s_total": last["writer_cpu_s"], "driver_cpu_s_total": last["cpu_s"],
        "server_cpu_s_total": last["server_cpu_s"],
        "samples": [{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()} for s in samples],
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def projection(result: dict, trials: int = 1000) -> dict:
    """The same search at ``trials`` trials, from this run's per-trial and per-result figures: results
    and finalisation scale with the trials (one writer thread finalises one trial at a time)."""
    done, tune = max(1, result["totals"]["trials_completed"]), result["tune"]
    per_trial = result["totals"]["results"] / done
    finalise_s = result["finalisation"].get("end.finalise", {}).get("mean_s", 0.0)
    growth = result["memory"]["after_warm_up_mb_per_100_trials"]
    return {"trials": trials, "results": round(per_trial * trials),
            "tune_loop_cpu_s": (tune["cpu_ms_per_result"] or 0.0) / 1000 * per_trial * trials,
            "finalisation_s_one_thread": finalise_s * trials,
            "rss_growth_mb": None if growth is None else growth * trials / 100,
            # Trials end at concurrency / (epochs per trial x epoch time); one thread finalises 1 / finalise_s.
            "finalisation_keeps_up_above_epoch_s": result["size"]["concurrency"] * finalise_s / per_trial}


def print_summary(result: dict) -> None:
    t, tune, mem, fin = result["timeline_s"], result["tune"], result["memory"], result["finalisation"]
    size = result["size"]
    print(f"\ncontrol plane: {size['trials']} trials x {size['epochs']} epochs, {size['concurrency']} at a time, "
          f"epoch scale {size['epoch_scale']}; exit code {result['exit_code']}")
    print(f"  totals: {result['totals']}")
    print(f"  Tune phase {tune['seconds']:.0f} s: {tune['results']} results, {tune['results_per_s']:.1f}/s; driver CPU "
          f"{_f(tune['cpu_ms_per_result'])} ms per result (without the outbox thread); MLflow writes "
          f"{tune['mlflow_writes_per_s']:.1f}/s (peak {_f(tune['mlflow_writes_per_s_peak_10_samples'])}/s)")
    windows = [round(w["cpu_ms_per_result"], 1) for w in tune["cpu_ms_per_result_windows"]]
    print(f"  CPU ms per result by window: {windows}")
    print(f"  RSS MB at trials finalised: {mem['rss_mb_at_trials_finalised']}; after warm-up "
          f"{_f(mem['after_warm_up_mb_per_minute'])} MB per minute, "
          f"{_f(mem['after_warm_up_mb_per_100_trials'])} MB per 100 trials finalised")
    print(f"  backlog: {result['backlog']}")
    print("  finalisation per trial (driver, outbox thread): " + ", ".join(
        f"{k} {v['mean_s']:.2f} s" for k, v in fin.items()))
    print(f"  projected to 1000 trials: {projection(result)}")
    print(f"  after Tune: outbox drained +{_after(t, 'outbox_drained')} s, "
          f"ranking printed +{_after(t, 'ranked_printed')} s, "
          f"registration {t['registration_s'] or 0:.2f} s, champion printed +{_after(t, 'champion_printed')} s")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _after(times: dict, key: str) -> str:
    if times.get(key) is None or times.get("tune_end") is None:
        return "-"
    return f"{times[key] - times['tune_end']:.1f}"


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["samples"]
    minutes = [x["t"] / 60 for x in s]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    ax = axes[0][0]
    for key, label in (("results", "results (Tune)"), ("delivered", "MLflow writes delivered (outbox)"),
                       ("trials_completed", "trials ended"), ("finalised", "trials finalised (model, plots)")):
        ax.plot(minutes, [x[key] for x in s], label=label)
    ax.set_yscale("symlog")
    ax.set_title("cumulative counts")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ax.plot(minutes, [x["starts"] + x["results"] - x["delivered"] for x in s], label="MLflow writes queued")
    ax.plot(minutes, [x["trials_completed"] - x["finalised"] for x in s], label="ended trials awaiting finalisation")
    ax.set_title("the outbox's backlog")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    ax.plot(minutes, [x["rss_mb"] for x in s], color="black")
    ax.set_title("driver resident memory (MB)")
    ax.set_xlabel("minutes")
    _cpu_panel(axes[1][1], s, minutes)
    for ax in axes.flat:
        for key, style in (("tune_end", "--"), ("champion_printed", ":")):
            if result["timeline_s"].get(key) is not None:
                ax.axvline(result["timeline_s"][key] / 60, color="grey", linestyle=style, linewidth=1)
    size = result["size"]
    fig.suptitle(f"ldlpose search driver, {size['trials']} trials x {size['epochs']} epochs, {size['concurrency']} "
                 f"at a time (dashed: Tune's last trial ends; dotted: champion registered)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _cpu_panel(ax, s: list[dict], minutes: list[float], span: int = 5) -> None:
    """CPU cores used, averaged over ``span`` samples: the driver without its writer, the writer, MLflow."""
    def rate(key):
        out = []
        for i in range(len(s)):
            j = max(0, i - span)
            dt = s[i]["t"] - s[j]["t"]
            out.append((s[i][key] - s[j][key]) / dt if dt > 0 else 0.0)
        return out

    total, writer = rate("cpu_s"), rate("writer_cpu_s")
    ax.plot(minutes, [a - b for a, b in zip(total, writer, strict=True)], label="driver: Tune loop, callbacks")
    ax.plot(minutes, writer, label="driver: outbox thread (MLflow writes, finalisation)")
    ax.plot(minutes, rate("server_cpu_s"), label="MLflow server")
    ax.set_title("CPU (cores)")
    ax.set_xlabel("minutes")
    ax.legend(fontsize=8)
