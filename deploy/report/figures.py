"""The report's charts, drawn by matplotlib and embedded in the page as SVG (sharp in print,
text kept as text). Gait-lab colour convention: left red, right green."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")  # no display on a kiosk's report job
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deploy.report.data import GVS_VARIABLES, SIDES, ReportData  # noqa: E402

COLOURS = {"left": "#d62728", "right": "#2ca02c"}
BAND = "#c8c8c8"
# the short names Baker et al. 2009 print under the movement analysis profile's bars (the full
# names of ten bars ran into each other at tablet width)
MAP_LABELS = {"pelvis_tilt": "Pel tilt", "pelvis_obliquity": "Pel obl", "pelvis_rotation": "Pel rot",
              "hip_flexion": "Hip flex", "hip_adduction": "Hip add", "hip_rotation": "Hip rot",
              "knee_flexion": "Knee flex", "ankle_dorsiflexion": "Ank dors",
              "foot_progression": "Foot prog"}
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "gaitstream-report", "font.size": 9, "font.family": "DejaVu Sans",
                     "axes.spines.top": False, "axes.spines.right": False})


def _svg(fig) -> str:
    buf = io.StringIO()
    # no date and fixed ids: the same log gives the same page, byte for byte
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg"):]  # the XML prolog and doctype do not belong inside HTML


def movement_analysis_profile(d: ReportData) -> str | None:
    """Baker et al. 2009's movement analysis profile: each variable's GVS (mean over the
    trusted strides) per side as bars, and the GPS of each side at the end. None when no
    stride carries indices."""
    names = [(v, label) for v, label in GVS_VARIABLES
             if any(d.gvs[v][s].n for s in SIDES)]
    if not names or not any(d.gps[s].n for s in SIDES):
        return None
    labels = [MAP_LABELS[v] for v, _ in names] + ["GPS"]
    fig, ax = plt.subplots(figsize=(7.0, 2.6))
    x = np.arange(len(labels))
    for k, side in enumerate(SIDES):
        vals = [d.gvs[v][side].mean for v, _ in names] + [d.gps[side].mean]
        vals = [np.nan if v is None else v for v in vals]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, color=COLOURS[side], label=side.capitalize())
    ax.axvline(len(names) - 0.5, color="#888", lw=0.6)
    ax.set_xticks(x, [lb.replace(" ", "\n") for lb in labels])
    ax.set_ylabel("GVS / GPS (deg)")
    ax.legend(frameon=False, ncols=2, loc="upper left")
    ax.grid(axis="y", color="#eee")
    ax.set_axisbelow(True)
    return _svg(fig)


def trends(d: ReportData) -> str | None:
    """Speed, cadence and GDI per session of the same subject, this session marked."""
    if len(d.trends) < 2:
        return None
    when = [datetime.fromtimestamp(t.first_wall_us / 1e6, tz=timezone.utc) for t in d.trends]
    panels = [("Speed (m/s)", [t.speed_mps for t in d.trends], None),
              ("Cadence (steps/min)", [t.cadence_spm for t in d.trends], None),
              ("GDI", None, [t.gdi for t in d.trends])]
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.0))
    x = np.arange(len(when))
    for ax, (title, vals, per_side) in zip(axes, panels):
        if vals is not None:
            ax.plot(x, [np.nan if v is None else v for v in vals], "o-", color="#333")
        else:
            for side in SIDES:
                ax.plot(x, [np.nan if g.get(side) is None else g[side] for g in per_side],
                        "o-", color=COLOURS[side], label=side.capitalize())
        cur = [i for i, t in enumerate(d.trends) if t.session == d.session]
        for i in cur:
            ax.axvline(i, color="#1f77b4", lw=0.8, ls=":")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(x, [w.strftime("%d %b %y") for w in when], rotation=30, ha="right",
                      fontsize=7)
        ax.margins(x=0.15)
    fig.tight_layout()
    return _svg(fig)


def kinematic_curves(curves: dict[str, np.ndarray], band: tuple[np.ndarray, np.ndarray],
                     labels: list[str]) -> str:
    """Each variable against % gait cycle: the normal band (mean +/- 1 SD) in grey, each
    stride of a side as a thin line and the side's mean as a thick one.

    ``curves``: side → (strides, variables, 101) degrees; ``band``: (variables, 51) mean and
    SD on 0, 2, ..., 100 %."""
    mean, sd = band
    n = len(labels)
    cols = 3
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 1.9 * rows), squeeze=False)
    pct_n = np.linspace(0, 100, mean.shape[1])
    pct = np.linspace(0, 100, 101)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        if np.all(np.isfinite(mean[i])):
            ax.fill_between(pct_n, mean[i] - sd[i], mean[i] + sd[i], color=BAND, lw=0)
        for side in SIDES:
            c = curves.get(side)
            if c is None or not len(c) or not np.isfinite(c[:, i]).any():
                continue
            for stride in c[:, i]:
                ax.plot(pct, stride, color=COLOURS[side], lw=0.4, alpha=0.35)
            ax.plot(pct, np.nanmean(c[:, i], axis=0), color=COLOURS[side], lw=1.6)
        ax.set_title(labels[i], fontsize=9)
        ax.set_xlim(0, 100)
        if i // cols == rows - 1:
            ax.set_xlabel("% gait cycle")
        if i % cols == 0:
            ax.set_ylabel("deg")
    fig.tight_layout()
    return _svg(fig)
