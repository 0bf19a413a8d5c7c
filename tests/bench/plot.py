# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Timeline picture of the zero-drop benchmark: responses per 100 ms by status across one flip."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

BUCKET = 0.1
BEFORE, AFTER = 3.0, 14.0  # seconds shown around the new instance's start
CATEGORIES = (  # (label, colour, test on a status)
    ("2xx", "tab:green", lambda s: isinstance(s, int) and 200 <= s < 300),
    ("503", "tab:orange", lambda s: s == 503),
    ("502", "tab:red", lambda s: s == 502),
    ("other HTTP", "tab:purple", lambda s: isinstance(s, int) and not 200 <= s < 300 and s not in (502, 503)),
    ("connection error", "black", lambda s: isinstance(s, str)),
)
MARKS = (  # (event key, label, colour)
    ("ready", "new slot ready", "tab:blue"),
    ("routed", "flip (first response of new)", "tab:cyan"),
    ("drained", "old drained (last response of old)", "tab:brown"),
    ("stopped", "old stopped (port closed)", "tab:gray"),
)


def plot_timelines(panels: list[dict], path: str) -> None:
    """panels: {"title", "anchor", "events": {key: t}, "samples": [(end, status), ...]}; times in s."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.9 * len(panels)), sharex=True, squeeze=False)
    nbuckets = int((BEFORE + AFTER) / BUCKET)
    lefts = [-BEFORE + i * BUCKET for i in range(nbuckets)]
    for ax, panel in zip(axes[:, 0], panels):
        counts = {label: [0] * nbuckets for label, _colour, _test in CATEGORIES}
        for end, status in panel["samples"]:
            i = int((end - panel["anchor"] + BEFORE) // BUCKET)
            if 0 <= i < nbuckets:
                label = next(label for label, _colour, test in CATEGORIES if test(status))
                counts[label][i] += 1
        bottom = [0] * nbuckets
        for label, colour, _test in CATEGORIES:
            ax.bar(lefts, counts[label], width=BUCKET, align="edge", bottom=bottom, color=colour, label=label)
            bottom = [b + c for b, c in zip(bottom, counts[label])]
        for key, label, colour in MARKS:
            if panel["events"].get(key) is not None:
                ax.axvline(panel["events"][key] - panel["anchor"], color=colour, linestyle="--", linewidth=1.4,
                           label=label)
        ax.set_title(panel["title"], fontsize=10, loc="left")
        ax.set_ylabel("responses / 100 ms")
        ax.set_xlim(-BEFORE, AFTER)
    handles, labels = {}, []
    for ax in axes[:, 0]:  # one legend for all panels: every category and mark seen anywhere
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [label for label, _colour, _test in CATEGORIES] + [label for _key, label, _colour in MARKS]
    labels = [label for label in labels if label in handles]
    fig.legend([handles[label] for label in labels], labels, loc="lower center", ncol=5, fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the new instance started (response arrival time)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
