"""Multi-turn refinement session (brief §4), the state both front ends drive.

A session holds one image and the prompt state of the object being labelled: the expression, the
clicks ((x, y) pixels, label 1 = positive / 0 = negative), an optional box (x0, y0, x1, y1) and the previous
turn's low-resolution logits, which every new turn feeds back as the mask prior. Turns form a history
with a cursor: ``undo`` and ``redo`` move the cursor and return the stored prediction unchanged (no
re-prediction). ``accept`` hands the final mask and the turn trace to listeners (the session store).

State is a plain object passed explicitly (SAM 2's ``inference_state`` pattern); nothing lives in globals.
Listeners are callables ``listener(event)`` receiving :class:`TurnEvent`, :class:`HistoryEvent` or
:class:`AcceptEvent`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from rrsis_engine import spatial_language
from rrsis_engine.errors import NoImageError, PromptError
from rrsis_engine.prediction import Prediction

TurnKind = Literal["text", "click", "box", "mask", "pick", "clear"]


@dataclass(frozen=True)
class PromptState:
    """Everything a prediction is conditioned on (besides the image).

    points: N×2 float (x, y) pixels; labels: N int (1 positive, 0 negative); box: (x0, y0, x1, y1) or None.
    """

    text: str = ""
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None


@dataclass
class Turn:
    """One step of the conversation. ``prediction`` is None only for a ``clear`` turn."""

    index: int
    kind: TurnKind
    state: PromptState
    prediction: Prediction | None
    used_prior: bool
    timestamp: float = field(default_factory=time.time)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnEvent:
    """A new turn was made (it is now the current one)."""

    session_id: str
    turn: Turn


@dataclass
class HistoryEvent:
    """``turn`` was undone (``action == "undo"``) or redone."""

    session_id: str
    action: Literal["undo", "redo"]
    turn: Turn


@dataclass
class AcceptEvent:
    """The final mask (H×W bool, image frame) with the expression(s) and the whole active turn trace."""

    session_id: str
    mask: np.ndarray
    expressions: list[str]
    turns: list[Turn]
    status: Literal["accepted", "rejected", "skipped"] = "accepted"


Listener = Callable[[Any], None]


class RefinementSession:
    """Turn-based refinement of one object on one image.

    ``predictor`` is a :class:`rrsis_engine.predictor.Predictor` (anything with ``set_image`` and
    ``predict``). Use one session per object; ``clear`` starts the next object on the same image.
    """

    def __init__(self, predictor, image=None, listeners: list[Listener] | None = None):
        self.predictor = predictor
        self.session_id = uuid.uuid4().hex
        self.listeners: list[Listener] = list(listeners or [])
        self._history: list[Turn] = []
        self._cursor = 0  # number of active turns; history[_cursor:] are redoable
        self.image = None
        if image is not None:
            self.set_image(image)

    # ---- image -----------------------------------------------------------------------------------
    def set_image(self, image, bands: tuple[int, ...] | None = None) -> None:
        """Load an image (path, array, PIL or RasterImage); clears the turn history."""
        self.image = self.predictor.set_image(image, bands=bands)
        self._history.clear()
        self._cursor = 0

    # ---- state -----------------------------------------------------------------------------------
    @property
    def turns(self) -> list[Turn]:
        """Active turns (undone ones excluded), oldest first."""
        return self._history[: self._cursor]

    @property
    def current(self) -> Prediction | None:
        """Prediction of the latest active turn (None before the first turn or after ``clear``)."""
        return self._history[self._cursor - 1].prediction if self._cursor else None

    @property
    def state(self) -> PromptState:
        return self._history[self._cursor - 1].state if self._cursor else PromptState()

    @property
    def can_undo(self) -> bool:
        return self._cursor > 0

    @property
    def can_redo(self) -> bool:
        return self._cursor < len(self._history)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    # ---- turns -----------------------------------------------------------------------------------
    def text(self, expression: str, keep_prompts: bool | None = None) -> Prediction:
        """New or amended expression. The previous mask stays the prior (follow-ups like "the smaller
        one"); clicks and box are kept when ``keep_prompts`` (default: keep them only when a mask
        already exists, i.e. this is a follow-up). A candidate's number and nothing else ("2", "number 2":
        :func:`spatial_language.parse_candidate_number`) picks that outlined candidate (:meth:`pick_candidate`)."""
        expression = self.predictor.validate_text(expression)
        number = spatial_language.parse_candidate_number(expression)
        if number is not None:
            return self.pick_candidate(number, said=expression)
        prev = self.state
        keep = self.current is not None if keep_prompts is None else keep_prompts
        state = replace(prev, text=expression) if keep else PromptState(text=expression)
        return self._turn("text", state, previous_text=self._sentence_before() if self.current is not None else "")

    def click(self, x: float, y: float, positive: bool = True) -> Prediction:
        """Add a positive (label 1) or negative (label 0) click at pixel (x, y) = (col, row)."""
        self._require_image()
        x, y = self.predictor.validate_point(x, y, self.image)
        prev = self.state
        state = replace(prev, points=prev.points + ((x, y),), labels=prev.labels + (1 if positive else 0,))
        return self._turn("click", state)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> Prediction:
        """Set (replace) the box prompt, (x0, y0) top-left and (x1, y1) bottom-right pixels."""
        self._require_image()
        box = self.predictor.validate_box((x0, y0, x1, y1), self.image)
        return self._turn("box", replace(self.state, box=box))

    def edit_mask(self, mask: np.ndarray) -> Prediction:
        """Replace the current mask by a hand-edited one (brush): it becomes the prior of the next turn."""
        self._require_image()
        pred = self.predictor.prediction_from_mask(mask, self.image)
        return self._append(Turn(len(self._history), "mask", self.state, pred, used_prior=False))

    def pick_candidate(self, number: int, said: str | None = None) -> Prediction:
        """Keep candidate ``number`` (1 = ``current.candidates[0]``, the front ends' numbering) of the ambiguous turn
        shown, alone: a ``pick`` turn whose mask is that region and whose prompts stay as they were (the sentence it
        disambiguates is logged with it). It is the prior of the next turn; undo shows the candidates again."""
        self._require_image()
        said = f"“{said}”" if said else f"Candidate {number}"
        pred = self.current
        if pred is None or not pred.offers_choice:
            raise PromptError(f"{said} picks a numbered candidate, but none is outlined now: describe the object in "
                              "words or click on it (after a pick, undo shows the candidates again).")
        n = len(pred.candidates)
        if not 1 <= number <= n:
            raise PromptError(f"{said}: there {'is' if n == 1 else 'are'} {n} candidate{'s' if n != 1 else ''}, "
                              f"numbered 1 to {n}; say one of those numbers.")
        picked = self.predictor.prediction_from_mask(pred.candidates[number - 1].mask, self.image)
        turn = Turn(len(self._history), "pick", self.state, picked, used_prior=False, detail={"candidate": number})
        return self._append(turn)

    def undo(self) -> Prediction | None:
        """Step back one turn; returns the now-current prediction (exactly the stored one)."""
        if not self.can_undo:
            return self.current
        self._cursor -= 1
        self._emit(HistoryEvent(self.session_id, "undo", self._history[self._cursor]))
        return self.current

    def redo(self) -> Prediction | None:
        if not self.can_redo:
            return self.current
        self._cursor += 1
        self._emit(HistoryEvent(self.session_id, "redo", self._history[self._cursor - 1]))
        return self.current

    def clear(self) -> None:
        """Start over on the same image (a ``clear`` turn, undoable)."""
        if self._cursor == 0:
            return
        self._append(Turn(len(self._history), "clear", PromptState(), None, used_prior=False))

    def accept(self, status: Literal["accepted", "rejected", "skipped"] = "accepted") -> AcceptEvent:
        """Finish this object: emits an :class:`AcceptEvent` with the final mask and turn trace, then
        clears the prompts for the next object."""
        if status == "accepted" and self.current is None:
            raise PromptError("Nothing to accept yet: type an expression or click on the object first.")
        mask = self.current.mask.copy() if self.current is not None else np.zeros(self._image_hw(), bool)
        turns = [t for t in self.turns if t.kind != "clear"]
        expressions = list(dict.fromkeys(t.state.text for t in turns if t.state.text))
        event = AcceptEvent(self.session_id, mask, expressions, turns, status)
        self._emit(event)
        self._history.clear()
        self._cursor = 0
        return event

    # ---- internals -------------------------------------------------------------------------------
    def _sentence_before(self) -> str:
        """The sentence a follow-up ("no, the one further left") is read against: this object's latest sentence that is
        not itself a follow-up (:func:`spatial_language.is_follow_up`; "the building" → "the one on the left" → "no,
        the one further right": "the building"); "" when there is none."""
        for turn in reversed(self.turns):
            if turn.kind == "clear":
                break
            if turn.state.text and not spatial_language.is_follow_up(turn.state.text):
                return turn.state.text
        return ""

    def _require_image(self) -> None:
        if self.image is None:
            raise NoImageError("No image is loaded yet: open an image first, then prompt.")

    def _image_hw(self) -> tuple[int, int]:
        return (self.image.height, self.image.width)

    def _turn(self, kind: TurnKind, state: PromptState, previous_text: str = "") -> Prediction:
        self._require_image()
        if not state.text and not state.points and state.box is None:
            raise PromptError("Give an expression, a click or a box first.")
        prior = self.current.low_res_logits if self.current is not None else None
        pred = self.predictor.predict(
            text=state.text,
            points=np.asarray(state.points, dtype=np.float32).reshape(-1, 2) if state.points else None,
            labels=np.asarray(state.labels, dtype=np.int64) if state.labels else None,
            box=np.asarray(state.box, dtype=np.float32) if state.box is not None else None,
            mask_input=prior,
            image=self.image,
            # a click turn's new click is the last point: on the rim of the mask shown, it corrects that mask locally
            previous_mask=self.current.mask if kind == "click" and self.current is not None else None,
            previous_text=previous_text,
            # a follow-up sentence ("the one on the left") picks among the candidates outlined with the turn before
            previous_candidates=[c.mask for c in self.current.candidates]
            if kind == "text" and self.current is not None and self.current.offers_choice else (),
        )
        self._append(Turn(len(self._history), kind, state, pred, used_prior=prior is not None))
        return pred

    def _append(self, turn: Turn) -> Prediction | None:
        del self._history[self._cursor :]  # a new turn drops the redo branch
        turn.index = len(self._history)
        self._history.append(turn)
        self._cursor = len(self._history)
        self._emit(TurnEvent(self.session_id, turn))
        return turn.prediction

    def _emit(self, event) -> None:
        for listener in self.listeners:
            listener(event)
