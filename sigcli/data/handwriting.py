"""How a synthetic writer signs: an action plan, its execution, and the ink it leaves.

The model follows the neuromotor view of handwriting used to synthesise signature corpora:
a writer holds an effector-independent *action plan* (target points spelling a name in
the writer's own letter forms, with their habits of connecting letters, and often a
flourish), and executes it with a sequence of rapid movements whose speeds are lognormal
in time (Plamondon's kinematic theory). Successive movements overlap, which rounds the
corners of the plan; fluent writers overlap more (smooth, fast strokes that start and end
in flight), slow ones less. Ink is laid along the executed trajectory: its width and tone
follow pen pressure and speed for the pen's family (ballpoint, pencil, felt-tip).

- **Identity** (:class:`Hand`) is in the plan and its execution: letter forms, name
  layout, connections, flourish, slant, proportions, size, tempo, smoothness, pressure
  profile and pen.
- **Within-writer variation** (:func:`perform`): parts of the plan (letters, flourish)
  move and resize a little, points jitter, the whole is re-slanted and re-scaled slightly,
  tempo and pressure change; each sample is written with another pen of the writer's pen
  family (signatures are collected over sessions), so width and tone say little about who wrote.
- **Skilled forgery** (:func:`forge`): a forger studies one genuine signature, keeps its
  perceptually salient points (high curvature, extremes), and re-executes them with their
  own errors of proportion, slant and size, slower and more even movements, tremor,
  hesitations (pauses and pen lifts) and blunt starts and ends; with a pen of the same
  family as the writer's.
- **Simple forgery** (:func:`impostor`): someone who knows only the name writes it in a
  hand of their own.

Everything is vectorised over points; a signature takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr, ndtri

# ---------------------------------------------------------------------------- letter forms

# Cursive letters as target points: x in letter widths, y in x-heights (baseline 0, up).
# Each enters low on the left and leaves on the right, so that letters join into words.
_LOWER = {
    "a": [(0, .3), (.55, .85), (.35, .98), (.08, .6), (.15, .08), (.45, .2), (.62, .92), (.6, .25), (.75, 0), (1, .3)],
    "b": [(0, .2), (.35, 1.3), (.45, 2.1), (.3, 2.15), (.18, 1.5), (.15, .25), (.32, 0), (.62, .35), (.52, .85),
          (.35, .65), (.6, .55), (1, .62)],
    "c": [(0, .3), (.62, .88), (.5, .98), (.15, .72), (.12, .2), (.4, 0), (.7, .1), (1, .3)],
    "d": [(0, .3), (.55, .85), (.35, .98), (.08, .6), (.15, .08), (.45, .2), (.66, 2.1), (.62, .3), (.78, 0), (1, .3)],
    "e": [(0, .2), (.55, .55), (.62, .85), (.42, .97), (.2, .62), (.28, .1), (.6, 0), (1, .3)],
    "f": [(0, .2), (.42, 1.45), (.56, 2.15), (.38, 2.1), (.3, 1.0), (.22, -1.0), (.05, -.9), (.2, -.3), (.5, .1),
          (1, .35)],
    "g": [(0, .3), (.55, .85), (.35, .98), (.08, .6), (.15, .08), (.45, .2), (.62, .92), (.56, -.6), (.35, -1.0),
          (.1, -.82), (.4, -.2), (1, .3)],
    "h": [(0, .2), (.32, 1.4), (.42, 2.15), (.22, 2.1), (.15, 1.0), (.12, 0), (.25, .65), (.52, .95), (.68, .55),
          (.7, .1), (1, .3)],
    "i": [(0, .2), (.3, .9), (.28, .25), (.45, 0), (1, .3)],
    "j": [(0, .2), (.35, .9), (.35, -.7), (.18, -1.0), (.05, -.75), (.35, -.2), (1, .3)],
    "k": [(0, .2), (.32, 1.4), (.42, 2.15), (.22, 2.1), (.15, 1.0), (.12, 0), (.3, .7), (.6, .95), (.55, .6),
          (.28, .45), (.6, .2), (.75, 0), (1, .3)],
    "l": [(0, .2), (.45, 1.5), (.5, 2.2), (.3, 2.12), (.25, .9), (.3, .1), (.55, 0), (1, .3)],
    "m": [(0, .1), (.08, .8), (.14, .05), (.25, .85), (.38, .92), (.45, .05), (.56, .85), (.72, .92), (.8, .1),
          (1, .3)],
    "n": [(0, .1), (.12, .8), (.2, .05), (.35, .85), (.58, .92), (.66, .1), (1, .3)],
    "o": [(0, .3), (.5, .95), (.22, .9), (.1, .4), (.35, 0), (.6, .4), (.5, .92), (1, .8)],
    "p": [(0, .2), (.22, .9), (.2, -1.0), (.22, .3), (.5, .9), (.72, .5), (.5, .02), (.3, .2), (1, .3)],
    "r": [(0, .2), (.3, .9), (.45, .72), (.65, .95), (.7, .1), (1, .3)],
    "s": [(0, .2), (.45, 1.0), (.35, .62), (.66, .3), (.5, 0), (.18, .1), (1, .3)],
    "t": [(0, .2), (.4, 1.65), (.34, .2), (.55, 0), (1, .3)],
    "u": [(0, .3), (.15, .9), (.15, .2), (.35, 0), (.6, .3), (.65, .9), (.65, .2), (.8, 0), (1, .3)],
    "v": [(0, .3), (.2, .9), (.4, 0), (.65, .95), (.6, .72), (1, .8)],
    "y": [(0, .3), (.15, .9), (.18, .2), (.38, 0), (.6, .35), (.64, .9), (.6, -.7), (.4, -1.0), (.15, -.8),
          (.45, -.2), (1, .3)],
    "z": [(0, .8), (.3, .95), (.6, .85), (.15, .02), (.45, .1), (.55, -.6), (.3, -.9), (.5, -.2), (1, .3)],
}
# Capitals, 2-2.5 x-heights tall; they start wherever the letter does and leave low on the right.
_CAPITAL = {
    "A": [(0, 0), (.3, 1.2), (.62, 2.5), (.72, 1.4), (.85, 0), (.75, .9), (.2, .95), (1.2, 1.1)],
    "B": [(.1, 2.3), (.2, 1.2), (.15, 0), (.2, 2.4), (.9, 2.3), (1.0, 1.75), (.35, 1.3), (1.05, .9), (.9, .1),
          (.25, .15), (1.3, .3)],
    "C": [(1.15, 2.0), (.8, 2.45), (.25, 2.0), (.05, .9), (.35, .05), (.85, 0), (1.3, .35)],
    "D": [(.3, 2.3), (.3, .4), (.1, 0), (.35, .1), (.95, .2), (1.2, 1.2), (.9, 2.3), (.1, 2.35), (.15, 2.1)],
    "E": [(1.0, 2.1), (.55, 2.45), (.3, 2.0), (.7, 1.35), (.25, 1.25), (.05, .45), (.45, 0), (1.25, .3)],
    "F": [(.1, 2.2), (1.2, 2.4), (.7, 2.35), (.55, 1.0), (.3, 0), (.1, .2)],
    "G": [(1.1, 2.0), (.65, 2.45), (.12, 1.6), (.15, .3), (.65, .05), (1.0, .8), (.95, -.7), (.65, -1.0), (.5, -.6),
          (1.35, .3)],
    "H": [(.1, 2.3), (.2, 1.0), (.1, 0), (.35, 1.1), (.95, 1.25), (1.1, 2.4), (1.0, .8), (1.05, 0), (1.35, .3)],
    "J": [(.2, 2.2), (1.1, 2.4), (.75, 2.3), (.62, .5), (.45, -.8), (.12, -.6), (.4, .1), (1.25, .3)],
    "L": [(.65, 1.8), (1.0, 2.4), (.72, 2.5), (.45, 1.2), (.15, .1), (.35, -.2), (.1, .15), (1.2, 0)],
    "M": [(0, 0), (.2, 2.3), (.45, .4), (.72, 2.3), (.98, .4), (1.22, 2.2), (1.32, .1), (1.55, .3)],
    "N": [(0, 0), (.2, 2.35), (.85, .1), (1.05, 2.4), (1.1, 1.9), (1.35, 2.1)],
    "P": [(.25, 2.2), (.2, 1.0), (.12, 0), (.22, 2.3), (.9, 2.35), (1.05, 1.75), (.6, 1.3), (.15, 1.35), (1.2, 1.0)],
    "R": [(.25, 2.2), (.18, 0), (.22, 2.3), (.9, 2.35), (1.0, 1.8), (.3, 1.3), (.8, .6), (1.05, 0), (1.35, .3)],
    "S": [(1.05, 2.2), (.6, 2.5), (.2, 2.05), (.75, 1.3), (.95, .55), (.45, 0), (.05, .35)],
    "T": [(.05, 2.2), (1.3, 2.4), (.7, 2.35), (.6, 1.0), (.45, 0), (.2, .2)],
    "V": [(0, 2.4), (.3, 1.0), (.45, 0), (.75, 1.3), (1.1, 2.4), (1.3, 2.2)],
}
# Strokes added after the word (i and j dots, t bar), in their letter's coordinates.
_DELAYED = {"i": [(.36, 1.5), (.42, 1.56)], "j": [(.4, 1.5), (.46, 1.56)], "t": [(.05, 1.12), (.85, 1.2)]}
_GLYPHS = {letter: np.array(points, dtype=float) for letter, points in {**_LOWER, **_CAPITAL}.items()}
_DELAYED_POINTS = {letter: np.array(points, dtype=float) for letter, points in _DELAYED.items()}
# Letters of names, repeated by rough frequency in Spanish, Portuguese and English names.
_NAME_LETTERS = "aaaaaeeeeeiiiooooorrrrnnnnllllsssttddcmmuuhgbpvyzfjk"
_INITIALS = "AABCCDEFGHJJLMMNPRSSTV"

# ---------------------------------------------------------------------------- pens

#: Family → (line width range in mm, grey level range of saturated ink, share of the width
#: that follows pressure, how much slower strokes darken, graininess on paper).
PEN_FAMILIES = {
    "ballpoint": ((0.28, 0.5), (20, 100), 0.25, 0.3, 0.15),
    "felt-tip": ((0.35, 0.6), (10, 45), 0.45, 0.1, 0.05),
    "pencil": ((0.3, 0.55), (60, 115), 0.4, 0.05, 0.7),
}


@dataclass(frozen=True)
class Pen:
    """One pen: its family and this pen's line width (mm), darkest grey and ink flow."""

    family: str
    width: float
    tone: float
    flow: float

    @property
    def width_from_pressure(self) -> float:
        return PEN_FAMILIES[self.family][2]

    @property
    def speed_darkening(self) -> float:
        return PEN_FAMILIES[self.family][3]

    @property
    def grain(self) -> float:
        return PEN_FAMILIES[self.family][4]


def make_pen(rng: np.random.Generator, family: str) -> Pen:
    (w_low, w_high), (t_low, t_high), *_ = PEN_FAMILIES[family]
    return Pen(family, float(rng.uniform(w_low, w_high)), float(rng.uniform(t_low, t_high)),
               float(rng.uniform(1.4, 2.6)))


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """Target points of a signature, in x-heights (y up), with what each belongs to."""

    points: np.ndarray  # M×2
    stroke: np.ndarray  # M, non-decreasing stroke number
    part: np.ndarray  # M, letter or flourish number: a part moves as one between samples
    looseness: np.ndarray  # M, how freely a point varies (flourishes more than letters)

    def with_points(self, points: np.ndarray) -> "Plan":
        return replace(self, points=points)


@dataclass(frozen=True)
class Hand:
    """One writer's (or forger's) way of signing one name."""

    plan: Plan
    name: tuple[str, ...]  # the words written
    forms: dict[str, np.ndarray]  # the writer's letter forms
    layout: int  # seed of how the letters are laid out and joined, and of the flourish
    flourish: bool
    slant: float  # shear: x += slant·y
    aspect: float  # horizontal stretch
    rotation: float  # baseline angle, radians
    x_height: float  # mm
    tempo: float  # median duration of a unit movement, seconds
    overlap: float  # start of the next movement after this share of the current one (< 1: smooth)
    sigma: float  # log-time spread of each movement's lognormal speed
    pressure: float  # mean pen pressure, 0..1
    emphasis: float  # extra pressure on downstrokes
    flying: float  # share of each stroke's first and last movement written in the air
    stability: float  # spread of the plan between samples, x-heights
    pen_family: str  # each sample is written with a new pen of this family
    tremor: float = 0.0  # mm, a forger's shake
    hesitation: float = 0.0  # a forger's pauses, per movement


@dataclass(frozen=True)
class Population:
    """Who writes in a dataset: their pens and how often they add a flourish."""

    pens: tuple[str, ...] = ("ballpoint",)
    flourish: float = 0.5  # share of writers with a flourish
    width_mm: float = 50.0  # typical width of a signature


def make_hand(rng: np.random.Generator, population: Population = Population(),
              name: tuple[str, ...] | None = None) -> Hand:
    """A new writer: a name (or ``name``) in a hand of their own."""
    name = _make_name(rng) if name is None else name
    forms = _letter_forms(rng)
    initials_only = all(len(word) == 1 for word in name)
    flourish = initials_only or rng.random() < population.flourish
    layout = int(rng.integers(2**63))
    plan = _compose(np.random.default_rng(layout), name, forms, flourish)
    family = str(population.pens[rng.integers(len(population.pens))])
    aspect = float(np.exp(rng.normal(0, 0.18)))
    # People size their signature to the space they sign in, whatever its length.
    width = population.width_mm * np.exp(rng.normal(0, 0.2)) / (np.ptp(plan.points[:, 0]) * aspect)
    return Hand(plan=plan, name=name, forms=forms, layout=layout, flourish=flourish,
                slant=float(rng.normal(0.2, 0.2)), aspect=aspect,
                rotation=float(rng.normal(0, 0.06)), x_height=float(np.clip(width, 1.5, 9.0)),
                tempo=float(rng.uniform(0.07, 0.12)), overlap=float(rng.uniform(0.45, 0.75)),
                sigma=float(rng.uniform(0.22, 0.38)), pressure=float(rng.uniform(0.45, 0.85)),
                emphasis=float(rng.uniform(0.0, 0.6)), flying=float(rng.uniform(0.15, 0.4)),
                stability=float(rng.uniform(0.025, 0.055)), pen_family=family)


def _make_name(rng: np.random.Generator) -> tuple[str, ...]:
    """The words signed: full names, an initial and a surname, or initials alone."""
    def word(capital: bool) -> str:
        letters = "".join(rng.choice(list(_NAME_LETTERS), int(rng.integers(3, 8))))
        return (rng.choice(list(_INITIALS)) + letters) if capital else letters

    kind = rng.choice(4, p=[0.4, 0.3, 0.15, 0.15])
    if kind == 0:
        return word(True), word(rng.random() < 0.8)
    if kind == 1:
        return str(rng.choice(list(_INITIALS))), word(True)
    if kind == 2:
        return word(True),
    return str(rng.choice(list(_INITIALS))), str(rng.choice(list(_INITIALS)))


def _letter_forms(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The writer's own version of every letter: shifted points, width and loop sizes."""
    width = np.exp(rng.normal(0.2, 0.15))
    capital = np.exp(rng.normal(0, 0.15))
    loops = np.exp(rng.normal(0, 0.15))  # ascenders and descenders
    forms = {}
    for letter, points in _GLYPHS.items():
        form = points + rng.normal(0, 0.1, points.shape)
        form[:, 0] *= width * np.exp(rng.normal(0, 0.08))
        if letter.isupper():
            form *= capital
        else:
            beyond = (form[:, 1] > 1.1) | (form[:, 1] < -0.1)
            form[beyond, 1] = np.where(form[beyond, 1] > 0, 1 + (form[beyond, 1] - 1) * loops, form[beyond, 1] * loops)
        forms[letter] = form
    return forms


def _compose(rng: np.random.Generator, name: tuple[str, ...], forms: dict[str, np.ndarray],
             flourish: bool) -> Plan:
    """Lay the words out in a row, join their letters, and add dots, bars and the flourish."""
    points, strokes, parts, loose = [], [], [], []
    stroke = part = 0
    lift = rng.uniform(0.0, 0.35)  # chance that a join between two letters is a pen lift
    spacing = rng.uniform(0.85, 1.1)
    x, baseline = 0.0, 0.0
    rise = rng.normal(0, 0.15)  # words climb or fall
    for word in name:
        delayed = []
        for i, letter in enumerate(word):
            form = forms[letter] + (x, baseline)
            if i and rng.random() < lift:
                stroke += 1
            points.append(form)
            strokes.append(np.full(len(form), stroke))
            parts.append(np.full(len(form), part))
            loose.append(np.ones(len(form)))
            last_letter_stroke = stroke
            if letter in _DELAYED_POINTS and rng.random() < 0.8:
                delayed.append((_DELAYED_POINTS[letter] + (x, baseline), part))
            x += (form[:, 0].max() - x) * spacing
            part += 1
        for extra, owner in delayed:
            stroke += 1
            points.append(extra)
            strokes.append(np.full(len(extra), stroke))
            parts.append(np.full(len(extra), owner))
            loose.append(np.full(len(extra), 1.5))
        stroke += 1
        x += rng.uniform(0.5, 1.4)
        baseline += rise
    if flourish:
        sweep = _flourish(rng, np.concatenate(points))
        # Half the writers sweep into the flourish from the last letter without lifting the pen.
        points.append(sweep)
        strokes.append(np.full(len(sweep), last_letter_stroke if rng.random() < 0.5 else stroke))
        parts.append(np.full(len(sweep), part))
        loose.append(np.full(len(sweep), 2.5))
    stroke_ids = np.concatenate(strokes)
    order = np.argsort(stroke_ids, kind="stable")  # a joined flourish continues its word's stroke
    return Plan(np.concatenate(points)[order], np.unique(stroke_ids[order], return_inverse=True)[1],
                np.concatenate(parts)[order], np.concatenate(loose)[order])


def _flourish(rng: np.random.Generator, body: np.ndarray) -> np.ndarray:
    """A rubric around the written name: an underline, a zigzag, a loop back, or a tall exit."""
    left, bottom = body.min(axis=0)
    right, top = body.max(axis=0)
    width = right - left
    kind = rng.choice(4, p=[0.35, 0.3, 0.2, 0.15])
    if kind == 0:  # underline sweeping back under the name
        n = int(rng.integers(4, 7))
        xs = np.linspace(right + rng.uniform(0.2, 0.8), left + width * rng.uniform(-0.1, 0.4), n)
        ys = bottom - rng.uniform(0.2, 0.9) + rng.normal(0, 0.2, n) + np.linspace(0, rng.normal(0, 0.5), n)
        ys[0] = rng.uniform(0, 0.8)
        return np.column_stack([xs, ys])
    if kind == 1:  # zigzag rubric: back and forth under the name
        turns = int(rng.integers(3, 7))
        span = width * rng.uniform(0.4, 0.9)
        start = right + rng.uniform(-0.2, 0.6)
        xs = start - np.where(np.arange(turns) % 2 == 0, 0, span) * np.linspace(1, rng.uniform(0.5, 1.1), turns)
        ys = np.linspace(rng.uniform(0, 0.6), bottom - rng.uniform(0.5, 1.5), turns) + rng.normal(0, 0.15, turns)
        return np.column_stack([xs, ys])
    if kind == 2:  # loop back over the name and out
        angle = np.linspace(-0.3 * np.pi, rng.uniform(1.1, 1.7) * np.pi, int(rng.integers(7, 11)))
        cx, cy = (left + right) / 2 + rng.normal(0, 0.3), (bottom + top) / 2 + rng.normal(0, 0.2)
        rx, ry = width / 2 * rng.uniform(0.8, 1.15), (top - bottom) / 2 * rng.uniform(0.9, 1.4)
        return np.column_stack([cx - rx * np.cos(angle), cy - ry * np.sin(angle)])
    n = int(rng.integers(3, 5))  # a long exit stroke rising to the right, with a hook
    xs = right + np.cumsum(rng.uniform(0.4, 1.2, n))
    ys = rng.uniform(0, 0.5) + np.cumsum(rng.uniform(0.2, 0.9, n))
    ys[-1] -= rng.uniform(0.5, 1.5)
    return np.column_stack([xs, ys])


# ---------------------------------------------------------------------------- variation, forgers

#: Range of a skilled forger's error (1: a copy as far off as a careful amateur's); it scales
#: how much of their own letter forms, proportions and drift creep into the copy.
FORGER_ERROR = (2.0, 3.5)
#: Spread of a writer's whole signature between samples (log-normal for aspect and size,
#: radians for rotation, shear for slant): on a form, one signs bigger or smaller, tilted.
GLOBAL_VARIATION = {"slant": 0.06, "aspect": 0.06, "rotation": 0.07, "size": 0.15}


def perform(hand: Hand, rng: np.random.Generator) -> tuple[Hand, Pen]:
    """One natural instance of ``hand`` and the pen it is written with.

    Letters and flourish move and resize as wholes (a word's spacing, a loop's size),
    points jitter a little, and the whole is re-slanted, re-sized and re-timed.
    """
    plan, spread = hand.plan, hand.stability
    parts = int(plan.part.max()) + 1
    counts = np.maximum(np.bincount(plan.part, minlength=parts), 1)
    centres = np.column_stack([np.bincount(plan.part, plan.points[:, i], parts) / counts for i in (0, 1)])
    grow = np.exp(rng.normal(0, 1.5 * spread, parts))[plan.part, None]
    loose = plan.looseness[:, None]
    centre = centres[plan.part]
    points = (centre + (plan.points - centre) * grow ** loose + rng.normal(0, spread, (parts, 2))[plan.part] * loose
              + rng.normal(0, 0.4 * spread, plan.points.shape) * loose)
    sample = replace(hand, plan=plan.with_points(points), slant=hand.slant + rng.normal(0, GLOBAL_VARIATION["slant"]),
                     aspect=hand.aspect * np.exp(rng.normal(0, GLOBAL_VARIATION["aspect"])),
                     rotation=hand.rotation + rng.normal(0, GLOBAL_VARIATION["rotation"]),
                     x_height=hand.x_height * np.exp(rng.normal(0, GLOBAL_VARIATION["size"])), tempo=hand.tempo * np.exp(rng.normal(0, 0.1)),
                     pressure=float(np.clip(hand.pressure * np.exp(rng.normal(0, 0.08)), 0.2, 1.0)))
    return sample, make_pen(rng, hand.pen_family)


def forge(hand: Hand, rng: np.random.Generator) -> Hand:
    """A skilled forger's hand for ``hand``'s signature.

    The forger studies one genuine sample, keeps its salient points and re-executes them
    slowly and evenly, with their own errors of proportion, slant and size, a shake,
    pauses and pen lifts, and blunt starts and ends, with a pen of the writer's family.
    """
    error = rng.uniform(*FORGER_ERROR)  # this forger's skill: how far the copy strays
    # A copyist's own letter forms creep into the copy.
    own, pull = _letter_forms(rng), min(0.35 * error, 0.8)
    forms = {letter: (1 - pull) * form + pull * own[letter] for letter, form in hand.forms.items()}
    plan = _compose(np.random.default_rng(hand.layout), hand.name, forms, hand.flourish)
    # A flourish is fast and ballistic: the copy gets its sweep only roughly right.
    sweep = plan.looseness[:, None] > 2
    plan = plan.with_points(plan.points + sweep * rng.normal(0, 0.2 * error, plan.points.shape))
    model, _ = perform(replace(hand, plan=plan), rng)
    motion = execute(model, rng, max_step=0.05)
    points, stroke = _salient_points(motion)
    width = np.ptp(points[:, 0]) + 1e-9
    phase = rng.uniform(0, 2 * np.pi, 2)
    waves = rng.uniform(0.6, 1.8, 2)
    relative = (points[:, 0] - points[:, 0].min()) / width
    points = points.copy()
    points[:, 0] += error * 0.025 * width * np.sin(2 * np.pi * waves[0] * relative + phase[0])
    points[:, 1] *= 1 + error * 0.1 * np.sin(2 * np.pi * waves[1] * relative + phase[1])
    # Letter by letter, the copy drifts from the model: loops a little off, joins misplaced.
    knots = np.arange(0, len(points) + 10, 10)
    drift = rng.normal(0, 0.1 * error, (len(knots), 2))
    points += np.column_stack([np.interp(np.arange(len(points)), knots, drift[:, i]) for i in (0, 1)])
    # Pen lifts: the forger stops to look at the model, and starts again where they were.
    inside = np.r_[False, stroke[1:-1] == stroke[:-2], False] & np.r_[False, stroke[1:-1] == stroke[2:], False]
    lifts = inside & (rng.random(len(points)) < rng.uniform(0.01, 0.04))
    copies = np.zeros(len(points) + int(lifts.sum()), dtype=bool)
    copies[np.cumsum(1 + lifts)[lifts] - 1] = True
    points, stroke = np.repeat(points, 1 + lifts, axis=0), np.repeat(stroke, 1 + lifts) + np.cumsum(copies)
    points[copies] += rng.normal(0, 0.08, (int(copies.sum()), 2))  # never quite where they stopped
    plan = Plan(points, np.unique(stroke, return_inverse=True)[1], np.arange(len(points)) // 6,
                np.ones(len(points)))
    # The overall look (slant, proportions, size) is what a copyist gets right: errors there
    # stay within the writer's own variation; the copy strays in the letters and strokes.
    return replace(hand, plan=plan, slant=hand.slant + rng.normal(0, 0.5 * GLOBAL_VARIATION["slant"]),
                   aspect=hand.aspect * np.exp(rng.normal(0, 0.5 * GLOBAL_VARIATION["aspect"])),
                   rotation=hand.rotation + rng.normal(0, 0.3 * GLOBAL_VARIATION["rotation"]),
                   x_height=hand.x_height * np.exp(rng.normal(0, 0.3 * GLOBAL_VARIATION["size"])),
                   tempo=hand.tempo * rng.uniform(1.3, 2.0), overlap=rng.uniform(0.75, 1.0),
                   sigma=rng.uniform(0.22, 0.38), pressure=hand.pressure * float(np.exp(rng.normal(0, 0.1))),
                   emphasis=hand.emphasis * rng.uniform(0.2, 0.8), flying=rng.uniform(0.02, 0.1),
                   stability=0.5 * hand.stability, tremor=rng.uniform(0.03, 0.07), hesitation=rng.uniform(0.02, 0.08))


def impostor(hand: Hand, rng: np.random.Generator, population: Population = Population()) -> Hand:
    """A simple forger: someone who knows the name only and writes it in their own hand."""
    return make_hand(rng, population, name=hand.name)


def _salient_points(motion: "Motion", spacing: float = 0.05, every: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Points a copyist would keep: turning points, stroke ends, and one every ``every``·``spacing``."""
    xy, stroke = _resample(motion.xy, motion.stroke, spacing)
    heading = np.unwrap(np.arctan2(*np.gradient(xy, axis=0).T[::-1]))
    turn = np.abs(np.gradient(heading))
    ends = np.r_[True, stroke[1:] != stroke[:-1]] | np.r_[stroke[1:] != stroke[:-1], True]
    peak = (turn > 0.12) & (turn >= np.r_[turn[1:], 0]) & (turn >= np.r_[0, turn[:-1]])
    keep = ends | peak | (np.arange(len(xy)) % every == 0)
    return xy[keep], stroke[keep]


def _resample(xy: np.ndarray, stroke: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` along each stroke (no points on the jumps between strokes)."""
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    step[stroke[1:] != stroke[:-1]] = 0.0
    along = np.r_[0.0, np.cumsum(step)]
    grid = np.arange(0.0, along[-1] + spacing, spacing)
    index = np.clip(np.searchsorted(along, grid, side="right") - 1, 0, len(xy) - 2)
    span = along[index + 1] - along[index]
    fraction = np.where(span > 0, (grid - along[index]) / np.where(span > 0, span, 1), 0.0)[:, None]
    return xy[index] + (xy[index + 1] - xy[index]) * fraction, stroke[index]


# ---------------------------------------------------------------------------- execution


@dataclass
class Motion:
    """The pen-down part of an executed plan, sampled about equally far apart along its path."""

    xy: np.ndarray  # T×2 positions (plan units, y up, until transformed)
    velocity: np.ndarray  # T×2, per second
    stroke: np.ndarray  # T
    since_down: np.ndarray  # T, seconds since the pen touched down
    until_up: np.ndarray  # T, seconds until it lifts

    def transformed(self, matrix: np.ndarray) -> "Motion":
        return replace(self, xy=self.xy @ matrix.T, velocity=self.velocity @ matrix.T)


_JUMP_MU, _JUMP_SIGMA = np.log(1e-4), 0.01  # a pen-up jump to the next stroke: a near-instant step
_COARSE = 4  # the first, speed-measuring pass samples time this many times more sparsely


def execute(hand: Hand, rng: np.random.Generator, max_step: float) -> Motion:
    """Move through ``hand.plan`` with overlapping lognormal movements, one per pair of targets.

    Position at time t is the start plus each movement's displacement times its lognormal
    CDF; between strokes the pen jumps while lifted. ``max_step``: about the largest
    distance (plan units) between samples.
    """
    points, stroke = hand.plan.points, hand.plan.stroke
    step = np.diff(points, axis=0)
    drawn = stroke[1:] == stroke[:-1]  # a movement on paper, else a jump between strokes
    length = np.linalg.norm(step, axis=1)
    n = len(step)
    median = hand.tempo * (0.4 + 0.6 * np.sqrt(length)) * np.exp(rng.normal(0, 0.12, n))
    sigma = hand.sigma * np.exp(rng.normal(0, 0.1, n))
    mu = np.where(drawn, np.log(median), _JUMP_MU)
    sigma = np.where(drawn, sigma, _JUMP_SIGMA)
    done = np.exp(mu + 3.5 * sigma)  # a movement is complete this long after it starts
    pause = np.where(rng.random(n) < hand.hesitation, rng.uniform(0.15, 0.4, n), 0.0)
    next_jumps = np.r_[~drawn[1:], False]
    gap = np.where(~drawn, 0.12, np.where(next_jumps, done + 0.02, hand.overlap * median + pause))
    start = np.r_[0.0, np.cumsum(gap[:-1])]
    movements = _Movements(points, step, start, np.maximum.accumulate(start + done), mu, sigma)

    # Ink from when the first movement of a stroke is `flying` done until the last is 1 - flying done.
    first = np.flatnonzero(np.r_[True, ~drawn[:-1]] & drawn)
    last = np.flatnonzero(drawn & np.r_[~drawn[1:], True])
    quantile = ndtri(np.clip(hand.flying, 1e-3, 0.45))
    down = start[first] + np.exp(mu[first] + sigma[first] * quantile)
    up = start[last] + np.exp(mu[last] - sigma[last] * quantile)

    # Samples about max_step apart: a coarse pass in time measures the speed, and the
    # samples are placed at equal distances travelled (at least one every few coarse steps,
    # so that a dot or a resting pen is not skipped).
    peak = length * np.exp(-mu + sigma**2 / 2) / (sigma * np.sqrt(2 * np.pi))
    dt = _COARSE * max(max_step / (1.5 * float(peak[drawn].max(initial=1e-9))), (up[-1] - down[0]) / 40_000)
    coarse, _ = _pen_down(np.arange(down[0], up[-1], dt), down, up)
    speed = np.hypot(*movements.at(coarse, position=False)[1].T)
    travelled = np.r_[0.0, np.cumsum(np.maximum(0.5 * (speed[1:] + speed[:-1]) * np.diff(coarse), max_step / _COARSE))]
    t, which = _pen_down(np.interp(np.arange(0.0, travelled[-1], max_step), travelled, coarse), down, up)
    xy, velocity = movements.at(t)
    return Motion(xy, velocity, which, t - down[which], up[which] - t)


def _pen_down(t: np.ndarray, down: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The times ``t`` at which the pen is on the paper, and the stroke it is drawing then."""
    which = np.searchsorted(down, t, side="right") - 1
    on = t <= up[which]
    return t[on], which[on]


@dataclass
class _Movements:
    """Overlapping lognormal movements: movement i starts at ``start[i]`` and moves the pen
    by ``step[i]`` with a lognormal (``mu[i]``, ``sigma[i]``) speed profile in time."""

    points: np.ndarray  # the plan's targets; the pen starts at the first
    step: np.ndarray
    start: np.ndarray
    complete_by: np.ndarray  # every movement up to i is complete at complete_by[i]
    mu: np.ndarray
    sigma: np.ndarray

    def at(self, t: np.ndarray, position: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Position (unless not asked for) and velocity at the times ``t``: the movements
        complete by then, plus those under way (evaluated together, ``width`` at a time)."""
        started = np.searchsorted(self.start, t, side="right")
        complete = np.searchsorted(self.complete_by, t, side="right")
        width = int(max((started - complete).max(initial=1), 1))
        index = complete[:, None] + np.arange(width)
        active = index < started[:, None]
        index = np.minimum(index, len(self.step) - 1)
        elapsed = np.maximum(t[:, None] - self.start[index], 1e-12)
        sigma = self.sigma[index]
        z = (np.log(elapsed) - self.mu[index]) / sigma
        speed = np.exp(-0.5 * z**2) / (elapsed * sigma * np.sqrt(2 * np.pi)) * active
        moves = self.step[:, 0][index], self.step[:, 1][index]
        velocity = np.column_stack([np.einsum("tw,tw->t", speed, move) for move in moves])
        if not position:
            return None, velocity
        share = ndtr(z) * active  # of each movement's step done by time t
        return self.points[complete] + np.column_stack([np.einsum("tw,tw->t", share, move) for move in moves]), velocity


# ---------------------------------------------------------------------------- ink on paper

#: Ink and paper are laid at most at this resolution; a finer scan is interpolated from
#: them by a whole factor (as a scanner's optics blur anyway), which keeps 600 dpi sets
#: nearly as fast as 300 dpi ones.
INK_DPI = 300
_ALONG = 0.75  # pixels between ink points along a stroke
_ACROSS = 0.9  # and across it (bilinear splats fill the gaps)
_REFERENCE_SPEED = 80.0  # mm/s at which a pen lays its nominal ink
_TREMOR_HZ = 6.0


def draw(hand: Hand, pen: Pen, rng: np.random.Generator, grain: np.ndarray, dpi: float,
         max_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Execute ``hand`` with ``pen`` and scan it at ``dpi``: uint8 grey, ink dark on light paper.

    An image that would reach ``max_shape`` (height, width) is written smaller, so it fits.
    """
    factor = 1 << max(0, int(np.ceil(np.log2(dpi / INK_DPI))))  # the scan is 1, 2, 4… times finer than the ink
    ink_dpi = dpi / factor
    px_per_mm = ink_dpi / 25.4
    cos, sin = np.cos(hand.rotation), np.sin(hand.rotation)
    # Plan units → mm (slant, stretch, rotate), then image axes (y down).
    to_mm = hand.x_height * np.array([[cos, -sin], [-sin, -cos]]) @ np.array([[hand.aspect, hand.aspect * hand.slant],
                                                                                [0.0, 1.0]])
    scale = float(np.abs(to_mm).sum(axis=1).max())
    motion = execute(hand, rng, max_step=1.5 / (scale * px_per_mm)).transformed(to_mm)
    speed = np.linalg.norm(motion.velocity, axis=1)  # mm/s
    pressure = _pressure(hand, motion, speed, rng)
    xy = motion.xy * px_per_mm
    if hand.tremor:
        xy = xy + _tremor(motion, hand.tremor * px_per_mm, rng)

    dwell = np.clip(1 - speed / 8.0, 0, 1) ** 2  # a resting pen bleeds a blot
    halfwidth = 0.5 * pen.width * px_per_mm * (1 - pen.width_from_pressure + pen.width_from_pressure * pressure / 0.65)
    halfwidth = np.maximum(halfwidth * (1 + 0.6 * dwell), 0.3)
    widest = float(halfwidth.max())
    margin = rng.uniform((6, 8), (30, 45), size=(2, 2)) * ink_dpi / 300  # (top, left), (bottom, right)
    low, span = xy.min(axis=0), np.ptp(xy, axis=0)
    shrink = 1.0
    if max_shape is not None:  # the canvas, in ink pixels
        room = np.asarray(max_shape[::-1]) / factor - 2 - 2 * (widest + 2) - margin.sum(axis=0)[::-1]
        shrink = min(1.0, float(np.min(room / np.maximum(span, 1))))
    xy = (xy - low) * shrink + (widest + 2 + margin[0, ::-1])
    shape = np.ceil(span[::-1] * shrink + 2 * (widest + 2) + margin.sum(axis=0)).astype(int)

    deposit = pen.flow * pressure / 0.65 * ((_REFERENCE_SPEED + 10) / (speed + 10)) ** pen.speed_darkening
    inked, opacity = _ink(xy, motion, halfwidth, deposit, pen, rng, shape)
    paper, texture = _paper(rng, grain, (int(shape[0]), int(shape[1])))
    if pen.grain:  # graphite and dry ink catch on the paper's tooth
        opacity *= np.clip(1 - pen.grain * (0.5 + 0.35 * texture[np.unravel_index(inked, texture.shape)]), 0, 1)
    flat = paper.reshape(-1)
    flat[inked] -= opacity * (flat[inked] - pen.tone)
    image = np.clip(paper, 0, 255, out=paper).astype(np.uint8)
    for _ in range(factor.bit_length() - 1):
        image = _double(image)
    return image


def _double(image: np.ndarray) -> np.ndarray:
    """``image`` (uint8) twice as large along both axes, new pixels the mean of their neighbours."""
    height, width = image.shape
    tall = np.empty((2 * height, width), dtype=np.uint8)
    tall[0::2] = image
    tall[1:-1:2] = (image[:-1].astype(np.uint16) + image[1:] + 1) >> 1
    tall[-1] = image[-1]
    wide = np.empty((2 * height, 2 * width), dtype=np.uint8)
    wide[:, 0::2] = tall
    wide[:, 1:-1:2] = (tall[:, :-1].astype(np.uint16) + tall[:, 1:] + 1) >> 1
    wide[:, -1] = tall[:, -1]
    return wide


def _pressure(hand: Hand, motion: Motion, speed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pen pressure: the writer's level, heavier on downstrokes, light as the pen lands and lifts."""
    downward = np.clip(motion.velocity[:, 1] / np.maximum(speed, 1e-9), -1, 1)  # image y points down
    drift = 1 + 0.12 * np.sin(2 * np.pi * (motion.since_down + motion.stroke * 0.37) / rng.uniform(0.3, 0.8)
                              + rng.uniform(0, 2 * np.pi))
    landing = np.clip(np.minimum(motion.since_down, motion.until_up) / 0.04, 0, 1)
    floor = max(0.15, 1 - 4 * hand.flying)  # fluent writers land and lift in flight, forgers press first
    return hand.pressure * (1 + hand.emphasis * downward) * drift * (floor + (1 - floor) * landing)


def _tremor(motion: Motion, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A forger's shake: smooth random offsets changing direction ~9 times a second."""
    clock = motion.since_down + motion.stroke * 10.0  # separate strokes shake independently
    knots = np.arange(0, clock.max() + 2 / _TREMOR_HZ, 1 / _TREMOR_HZ)
    shake = rng.normal(0, amplitude, (len(knots), 2))
    return np.column_stack([np.interp(clock, knots, shake[:, 0]), np.interp(clock, knots, shake[:, 1])])


def _ink(xy: np.ndarray, motion: Motion, halfwidth: np.ndarray, deposit: np.ndarray, pen: Pen,
         rng: np.random.Generator, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ink laid along the trajectory on a raster of ``shape``: the flat indices of the
    pixels it reaches, and their opacity (0..1).

    The path is resampled so that the outer edge of a stroke, not just its centre line,
    advances at most ~_ALONG per point (no gaps at sharp turns); ink points laid across
    the stroke are splatted bilinearly, and their density saturates as 1 - e^-density.
    """
    heading = np.arctan2(motion.velocity[:, 1], motion.velocity[:, 0])
    same = motion.stroke[1:] == motion.stroke[:-1]
    turn = np.abs(np.angle(np.exp(1j * np.diff(heading))))
    advance = (np.linalg.norm(np.diff(xy, axis=0), axis=1) + halfwidth[1:] * turn) * same
    along = np.r_[0.0, np.cumsum(advance)]
    grid = np.arange(0.0, along[-1], _ALONG)
    index = np.clip(np.searchsorted(along, grid, side="right") - 1, 0, len(xy) - 2)
    span = along[index + 1] - along[index]
    f = np.where(span > 0, (grid - along[index]) / np.where(span > 0, span, 1), 0.0)

    def at(values: np.ndarray) -> np.ndarray:
        return values[index] + (values[index + 1] - values[index]) * (f if values.ndim == 1 else f[:, None])

    centre, width, ink = at(xy), at(halfwidth), at(deposit)
    direction = at(motion.velocity)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    normal = np.column_stack([-direction[:, 1], direction[:, 0]])

    across = int(np.ceil(2 * float(width.max()) / _ACROSS)) + 1
    offsets = np.linspace(-1.0, 1.0, across)
    streaks = np.clip(1 + rng.normal(0, 0.8 * pen.grain, across), 0.2, 1.8)  # ballpoint and pencil tracks
    share = np.full(across, 1.0)
    share[[0, -1]] = 0.5  # the edges of the ribbon count half, as in a trapezoid rule
    weight = ((ink * _ALONG * 2 * width / (across - 1))[:, None] * (share * streaks)).ravel()
    x = (centre[:, :1] + normal[:, :1] * width[:, None] * offsets).ravel()
    y = (centre[:, 1:] + normal[:, 1:] * width[:, None] * offsets).ravel()
    height, cols = int(shape[0]), int(shape[1])
    left, top = np.floor(x), np.floor(y)
    fx, fy = x - left, y - top
    cell = top.astype(np.int64) * cols + left.astype(np.int64)
    near, far = weight * (1 - fx), weight * fx
    density = np.bincount(np.concatenate([cell, cell + 1, cell + cols, cell + cols + 1]),
                          np.concatenate([near * (1 - fy), far * (1 - fy), near * fy, far * fy]),
                          minlength=height * cols)[:height * cols]
    inked = np.flatnonzero(density)  # most of the page is bare paper
    return inked, -np.expm1(-density[inked])


def paper_grain(rng: np.random.Generator, side: int = 1024) -> np.ndarray:
    """A square of paper texture (mean 0, std 1): fibres a few pixels long over fine noise."""
    from scipy import ndimage

    fine = rng.normal(0, 1, (side, side)).astype(np.float32)
    fibres = ndimage.gaussian_filter(fine, (1.0, 2.5), mode="wrap")
    texture = 0.6 * fine + fibres / fibres.std()
    return (texture - texture.mean()) / texture.std()


def _paper(rng: np.random.Generator, grain: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Scanned paper (grey level with a tilt in lighting and texture), and the texture itself."""
    height, width = shape
    if height <= grain.shape[0] and width <= grain.shape[1]:
        top = int(rng.integers(0, grain.shape[0] - height + 1))
        left = int(rng.integers(0, grain.shape[1] - width + 1))
        texture = grain[top:top + height, left:left + width]
    else:  # a sheet larger than the texture repeats it
        top, left = rng.integers(0, grain.shape)
        texture = grain.take(range(top, top + height), axis=0, mode="wrap").take(range(left, left + width), axis=1,
                                                                                  mode="wrap")
    level = rng.uniform(205, 240)
    tilt_y, tilt_x = rng.uniform(-5, 5, 2)
    paper = texture * np.float32(rng.uniform(1.5, 3.5))
    paper += np.linspace(level - tilt_x, level + tilt_x, width, dtype=np.float32)
    paper += np.linspace(-tilt_y, tilt_y, height, dtype=np.float32)[:, None]
    return paper, texture
