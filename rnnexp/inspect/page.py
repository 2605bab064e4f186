"""A look inside a trained network, as one self-contained page (inspect.html, no network
needed): the text coloured by the model's surprisal, by any unit chosen by number, and by the
units that track simple features of the text best (units.py), with the model's
top guesses for the next character on hover; plus, for gated cells, how often each gate
unit saturates (gate_saturation.png, also drawn into the page).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnexp.atomic import atomic_write
from rnnexp.data import Vocab
from rnnexp.errors import ConfigError
from rnnexp.inspect.trace import LEFT, RIGHT, Trace, trace
from rnnexp.inspect.units import (
    STRONG,
    Match,
    best_matches,
    correlations,
    rank_units,
    strongest_units,
    text_features,
)
from rnnexp.model import CharRNN

TEMPLATE = Path(__file__).with_name("inspect.html")
PAGE, GATES = "inspect.html", "gate_saturation.png"  # the files a run writes (and logs)


@dataclass
class Inspection:
    text: str
    vocab: list[str]  # the model's characters, by id
    trace: Trace
    features: list[str]  # the features that vary on the text
    best: list[Match]  # each unit's strongest feature
    shown: list[Match]  # the units drawn one by one: ranked, or chosen
    strongest: list[Match]  # each feature's strongest unit, in the features' order


def inspect(model: CharRNN, vocab: Vocab, ids: np.ndarray, units: int = 8,
            chosen: list[int] | None = None, top: int = 5) -> Inspection:  # fmt: skip
    """Trace `model` over `ids` and rank its units (the `units` best), or show `chosen`."""
    text = vocab.decode(ids)
    t = trace(model, ids, top)
    L, N, H = t.units.shape
    feats = text_features(text)
    names = list(feats)
    r = correlations(t.units.transpose(1, 0, 2).reshape(N, L * H), feats)  # (F, L*H)
    best = best_matches(r, names)
    if chosen:
        wrong = [u for u in chosen if not 0 <= u < L * H]
        if wrong:
            raise ConfigError(f"no unit {wrong[0]}: this model has units 0..{L * H - 1}")
        shown = [best[u] for u in chosen]
    else:
        shown = rank_units(r, names, units)
    return Inspection(text, vocab.chars, t, names, best, shown, strongest_units(r, names))


HOW = (
    "Ranked by their correlation (Pearson r over this text) with simple features of it: "
    "first the strongest unit of each feature some unit tracks with |r| \u2265 {strong}, "
    "then the others by their largest |r|. Features: {features}."
)


def errors(net: np.ndarray, other: np.ndarray) -> dict[str, int]:
    """The paper's error breakdown of the network against an n-gram: the characters each gets
    wrong (gives p < 0.5), as counts of both right, only one right, both wrong."""
    a, b = net >= 0.5, other >= 0.5
    return {"both right": int(np.sum(a & b)), "only the network right": int(np.sum(a & ~b)),
            "only the n-gram right": int(np.sum(~a & b)),
            "both wrong": int(np.sum(~a & ~b))}  # fmt: skip


def _tables(insp: Inspection, reference: tuple[str, np.ndarray] | None) -> str:
    """Each feature's strongest unit, and the errors against the n-gram, as HTML tables."""
    rows = "".join(f"<tr><td>{html.escape(m.feature)}</td><td>{m.unit}</td><td>{m.r:+.3f}</td>"
                   f"</tr>" for m in insp.strongest)  # fmt: skip
    out = (f"<h2>Each feature's strongest unit</h2><table><tr><th>feature</th><th>unit</th>"
           f"<th>r</th></tr>{rows}</table>") if rows else ""  # fmt: skip
    if reference is not None:
        name, p = html.escape(reference[0]), reference[1]
        net = np.exp(-insp.trace.surprisal[1:])  # the network's p of each next character
        counts = errors(net, p[: len(net)])
        cells = "".join(f"<tr><td>{k}</td><td>{v:,}</td><td>{v / max(len(net), 1):.1%}</td></tr>"
                        for k, v in counts.items())  # fmt: skip
        out += (f'<h2>Errors against the {name}</h2><p class="how">A character is an error of '
                f"a model that gives it p &lt; 0.5 (Karpathy, Johnson &amp; Fei-Fei 2015), over "
                f"the {len(net):,} characters above.</p><table>{cells}</table>")  # fmt: skip
    return out


def render(insp: Inspection, title: str, about: str, gates_png: bytes | None = None,
           reference: tuple[str, np.ndarray] | None = None) -> str:  # fmt: skip
    """The page, as one HTML string with its data, script, style, figure and tables inside;
    `reference`: a baseline's name and its p of each character after the first."""
    t = insp.trace
    L, N, H = t.units.shape
    # every unit's values as int8 (-127..127 for -1..1), unit after unit: 1 byte a value
    q = np.clip(np.rint(t.units.transpose(0, 2, 1).reshape(L * H, N) * 127), -127, 127)
    index = {name: i for i, name in enumerate(insp.features)}
    data = {
        "chars": list(insp.text),
        "vocab": insp.vocab,
        "surprisal": [None if math.isnan(s) else round(float(s), 3) for s in t.surprisal],
        "full_surprisal": round(math.log(max(len(insp.vocab), 2)), 3),  # uniform guess
        "layers": L,
        "hidden": H,
        "units": base64.b64encode(q.astype(np.int8).tobytes()).decode(),
        "features": insp.features,
        "best": [[index.get(m.feature, -1), round(m.r, 3)] for m in insp.best],
        "ranked": [[m.unit, m.feature, round(m.r, 3)] for m in insp.shown],
        "first": insp.shown[0].unit if insp.shown else 0,
        "how": HOW.format(strong=STRONG, features=", ".join(insp.features) or "none vary"),
        "k": t.top_ids.shape[1],
        "top_ids": t.top_ids.ravel().tolist(),
        "top_probs": np.round(t.top_probs, 4).ravel().tolist(),
    }
    # inside <script>: "</" would end it early
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    gates = ""
    if gates_png:
        src = base64.b64encode(gates_png).decode()
        gates = (
            f'<h2>Gate saturation</h2><p class="how">Each dot a unit\'s gate: the fraction of '
            f"characters it is below {LEFT} (left-saturated) and above {RIGHT} "
            f"(right-saturated), as in Karpathy, Johnson &amp; Fei-Fei (2015).</p>"
            f'<img alt="gate saturation" src="data:image/png;base64,{src}">'
        )
    values = {"TITLE": html.escape(title), "ABOUT": html.escape(about),
              "GATES": gates + _tables(insp, reference), "DATA": blob}  # fmt: skip
    # one pass: a text that holds "__TITLE__" stays as it is
    return re.sub(r"__(TITLE|ABOUT|GATES|DATA)__", lambda m: values[m[1]], TEMPLATE.read_text())


def write(page: Path, model: CharRNN, vocab: Vocab, ids: np.ndarray, title: str,
          about: str, units: int = 8, chosen: list[int] | None = None,
          gates: Path | None = None,
          reference: tuple[str, np.ndarray] | None = None) -> list[Path]:  # fmt: skip
    """The page at `page` and, for gated cells, the saturation figure at `gates` (drawn into
    the page either way): the files written, each whole. `reference`: render's."""
    insp = inspect(model, vocab, ids, units, chosen)
    png = gate_saturation(insp.trace.saturation, title) if insp.trace.saturation else None
    written = [page]
    text = render(insp, title, f"{about}: {insp.trace.loss:.4f} nats/char", png, reference)
    atomic_write(page, lambda f: f.write(text.encode()))
    if png and gates is not None:
        atomic_write(gates, lambda f: f.write(png))
        written.append(gates)
    return written


def gate_saturation(saturation: dict[tuple[int, str], tuple], title: str) -> bytes:
    """A PNG (bytes) of the figure of Karpathy, Johnson & Fei-Fei (2015): one panel per gate,
    one dot per unit and layer at (fraction of characters left-saturated, fraction
    right-saturated). saturation: (layer, gate) -> (left (H,), right (H,))."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gates = list(dict.fromkeys(name for _, name in saturation))
    layers = sorted({l for l, _ in saturation})
    fig, axes = plt.subplots(1, len(gates), figsize=(3.2 * len(gates) + 0.6, 3.6), dpi=100,
                             squeeze=False)  # fmt: skip
    for ax, gate in zip(axes[0], gates, strict=True):
        ax.plot([0, 1], [1, 0], color="gray", linewidth=0.8, linestyle="--")  # always one
        for l in layers:
            left, right = saturation[(l, gate)]
            ax.scatter(left, right, s=10, alpha=0.6, label=f"layer {l}")
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=f"{gate} gate",
               xlabel="fraction left-saturated (< 0.1)")  # fmt: skip
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction right-saturated (> 0.9)")
    if len(layers) > 1:
        axes[0][-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Title": title})
    plt.close(fig)
    return out.getvalue()
