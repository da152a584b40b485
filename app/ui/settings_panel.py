"""Sampler settings: sliders that only offer valid (answer length, block length, steps)."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
    QSlider, QSpinBox,
    QVBoxLayout, QWidget,
)

from app.session import settings_logic as logic
from app.session.settings_logic import constraints_entry
from app.session.stats_text import schedule_summary
from llada_core.settings import REMASKING_CHOICES, SamplerSettings

DEFAULTS = SamplerSettings()
# Fast: a KV cache refreshed at each block, early stop at EOS and, when ticked, parallel commits.
MODES = [("Exact (reference)", "exact"), ("Fast (KV cache)", "fast")]


class ChoiceSlider(QWidget):
    """A slider over a list of allowed values, with a box beside it to type the value.

    A typed value that is not a choice moves to the nearest choice (the slider's own rule,
    app.session.settings_logic.nearest); with `free`, any value from 1 to `maximum` is taken as typed
    (the answer length: the other sliders follow it)."""

    valueChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, free: bool = False,
                 maximum: int = 4096):
        super().__init__(parent)
        self.free = free
        self.maximum = maximum
        self.choices: list[int] = [1]
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setPageStep(1)
        self.slider.setMinimumWidth(60)
        self.box = QSpinBox()
        self.box.setKeyboardTracking(False)   # a value is taken when typing ends (Enter, Tab)
        self.box.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.box.setRange(1, maximum)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 1)
        row.addWidget(self.box)
        self.slider.valueChanged.connect(self._moved)
        self.box.valueChanged.connect(self._typed)

    def set_choices(self, choices: list[int], value: int) -> None:
        self.choices = list(choices)
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self.choices) - 1)
        self.slider.setValue(self.choices.index(value))
        self.slider.blockSignals(False)
        self._show_in_box(value)

    def value(self) -> int:
        return self.choices[self.slider.value()]

    def _show_in_box(self, value: int) -> None:
        self.box.blockSignals(True)
        if not self.free:
            self.box.setRange(min(self.choices), max(self.choices))
        self.box.setValue(value)
        self.box.blockSignals(False)

    def _moved(self, index: int) -> None:
        self._show_in_box(self.choices[index])
        self.valueChanged.emit(self.choices[index])

    def _typed(self, value: int) -> None:
        before = self.value()
        if self.free and value not in self.choices:
            self.choices = sorted({*self.choices, value})
            self.slider.blockSignals(True)         # the list grew: keep the slider on `before`
            self.slider.setRange(0, len(self.choices) - 1)
            self.slider.setValue(self.choices.index(before))
            self.slider.blockSignals(False)
        chosen = logic.nearest(self.choices, value)
        if chosen == before:
            self._show_in_box(chosen)      # snapped back to what it was: nothing changed
            return
        self.slider.setValue(self.choices.index(chosen))   # emits valueChanged via _moved


class SettingsPanel(QWidget):
    """Emits `changed` with a settings dict (SamplerSettings keys) whenever the user edits one."""

    changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.block_diffusion: Optional[dict] = None  # the loaded model's, if LLaDA 2.x
        self.gen_length = ChoiceSlider(free=True, maximum=logic.ANSWER_LENGTHS[-1] * 4)
        self.block_length = ChoiceSlider()
        self.steps = ChoiceSlider()
        self.gen_length.setObjectName("answerLength")
        self.block_length.setObjectName("blockLength")
        self.steps.setObjectName("steps")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.cfg_scale = QDoubleSpinBox()
        self.cfg_scale.setRange(0.0, 10.0)
        self.cfg_scale.setSingleStep(0.5)
        self.cfg_scale.setDecimals(2)
        self.remasking = QComboBox()
        self.remasking.addItems(list(REMASKING_CHOICES))
        self.mode = QComboBox()
        self.mode.setObjectName("mode")
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.parallel = QCheckBox("Commit every token above τ")
        self.parallel.setObjectName("parallel")
        self.threshold = QSlider(Qt.Horizontal)
        self.threshold.setObjectName("threshold")
        self.threshold.setRange(50, 99)
        self.threshold_box = QDoubleSpinBox()
        self.threshold_box.setObjectName("thresholdBox")
        self.threshold_box.setRange(0.50, 0.99)
        self.threshold_box.setSingleStep(0.01)
        self.threshold_box.setDecimals(2)
        self.threshold_box.setKeyboardTracking(False)
        threshold_row = QWidget()
        threshold_layout = QHBoxLayout(threshold_row)
        threshold_layout.setContentsMargins(0, 0, 0, 0)
        threshold_layout.addWidget(self.threshold, 1)
        threshold_layout.addWidget(self.threshold_box)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2_147_483_647)
        self.seed.setSpecialValueText("random")
        self.constraints = QLineEdit()
        self.constraints.setObjectName("constraints")
        self.constraints.setPlaceholderText("0: Once, 12: dragon")
        self.constraints.setToolTip(
            "Words pinned at answer positions (0-based tokens), as the reference demo's "
            "'position: word'; click a position on the empty canvas to add it.")
        # The loaded model's own defaults (set_defaults), the reference's until a model loads.
        self.defaults: dict = DEFAULTS.to_dict()
        self.reset = QPushButton("Model defaults")
        self.reset.setObjectName("resetDefaults")
        self.reset.setToolTip("Back to the loaded model's own settings (its recommended answer "
                              "length, blocks, steps and sampler)")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("settingsSummary")

        form = QFormLayout()
        # Labels above their fields when the dock is narrow, so nothing is cut off.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Answer length", self.gen_length)
        form.addRow("Block length", self.block_length)
        form.addRow("Steps", self.steps)
        form.addRow("Temperature", self.temperature)
        form.addRow("CFG scale", self.cfg_scale)
        form.addRow("Remasking", self.remasking)
        form.addRow("Seed", self.seed)
        form.addRow("Sampler", self.mode)
        form.addRow("", self.parallel)
        form.addRow("Threshold τ", threshold_row)
        form.addRow("Constraints", self.constraints)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addWidget(self.summary)
        outer.addWidget(self.reset)
        outer.addStretch(1)

        self._updating = False
        self.set_settings(DEFAULTS.to_dict())
        self.gen_length.valueChanged.connect(self._gen_changed)
        self.block_length.valueChanged.connect(self._block_changed)
        self.steps.valueChanged.connect(lambda _: self._emit())
        self.temperature.valueChanged.connect(lambda _: self._emit())
        self.cfg_scale.valueChanged.connect(lambda _: self._emit())
        self.remasking.currentTextChanged.connect(lambda _: self._emit())
        self.seed.valueChanged.connect(lambda _: self._emit())
        self.mode.currentIndexChanged.connect(lambda _: self._emit())
        self.parallel.toggled.connect(lambda _: self._emit())
        self.threshold.valueChanged.connect(lambda _: self._emit())
        self.threshold_box.valueChanged.connect(
            lambda value: self.threshold.setValue(round(value * 100)))
        self.constraints.textChanged.connect(lambda _: self._emit())
        self.reset.clicked.connect(self._reset)

    # --- values ----------------------------------------------------------------------------
    def settings(self) -> dict:
        seed = self.seed.value()
        return {"gen_length": self.gen_length.value(), "block_length": self.block_length.value(),
                "steps": self.steps.value(), "temperature": round(self.temperature.value(), 4),
                "cfg_scale": round(self.cfg_scale.value(), 4),
                "remasking": self.remasking.currentText(),
                "seed": None if seed < 0 else seed,
                "mode": self.mode.currentData(),
                "threshold": self.threshold.value() / 100 if self._threshold_on() else None,
                **constraints_entry(self.constraints.text())}

    def _threshold_on(self) -> bool:
        """Threshold decoding ranks by the model's confidence, so random remasking turns it off."""
        return self.parallel.isChecked() and self.remasking.currentText() == "low_confidence"

    def set_settings(self, values: dict) -> None:
        """Show `values` (missing keys take the reference defaults; invalid ones are snapped)."""
        merged = {**DEFAULTS.to_dict(), **{k: v for k, v in (values or {}).items()
                                          if v is not None or k == "seed"}}
        self._updating = True
        try:
            gen = int(merged["gen_length"])
            gen, block, steps = logic.snap(gen, int(merged["block_length"]), int(merged["steps"]))
            self.gen_length.set_choices(logic.answer_length_choices(gen), gen)
            self._gen_shown = gen
            self.block_length.set_choices(logic.block_length_choices(gen), block)
            self.steps.set_choices(logic.steps_choices(gen, block), steps)
            self.temperature.setValue(float(merged["temperature"]))
            self.cfg_scale.setValue(float(merged["cfg_scale"]))
            remasking = merged["remasking"]
            self.remasking.setCurrentText(remasking if remasking in REMASKING_CHOICES
                                          else DEFAULTS.remasking)
            seed = merged.get("seed")
            self.seed.setValue(-1 if seed is None else int(seed))
            mode_index = self.mode.findData(merged.get("mode"))
            self.mode.setCurrentIndex(mode_index if mode_index >= 0 else 0)
            threshold = merged.get("threshold")
            self.parallel.setChecked(threshold is not None)
            if threshold is not None:
                self.threshold.setValue(min(99, max(50, round(float(threshold) * 100))))
            constraints = merged.get("constraints")
            self.constraints.setText(constraints if isinstance(constraints, str) else "")
        finally:
            self._updating = False
        self._show_summary()

    # --- keeping the combination valid -------------------------------------------------------
    def _gen_changed(self, gen: int) -> None:
        # Only the answer length moved: keep the tokens per step and a sensible block length.
        _, block, steps = logic.for_answer_length(gen, self.block_length.value(),
                                                  self.steps.value(), self._gen_shown)
        self._gen_shown = gen
        self.block_length.set_choices(logic.block_length_choices(gen), block)
        self.steps.set_choices(logic.steps_choices(gen, block), steps)
        self._emit()

    def _block_changed(self, block: int) -> None:
        gen = self.gen_length.value()
        steps = logic.nearest(logic.steps_choices(gen, block), self.steps.value())
        self.steps.set_choices(logic.steps_choices(gen, block), steps)
        self._emit()

    def set_defaults(self, defaults: dict) -> None:
        """What "Model defaults" returns to: the loaded model's own settings."""
        self.defaults = dict(defaults)

    def _reset(self) -> None:
        self.set_settings(self.defaults)
        self._emit()

    def add_constraint_position(self, position: int) -> None:
        """Append 'N: ' to the constraints and put the cursor after it, for the word."""
        text = self.constraints.text().rstrip()
        if text and not text.endswith(","):
            text += ","
        self.constraints.setText(f"{text} {position}: " if text else f"{position}: ")
        self.constraints.setFocus()
        self.constraints.setCursorPosition(len(self.constraints.text()))

    def set_block_diffusion(self, block_diffusion: Optional[dict]) -> None:
        """The loaded model's decoder: LLaDA 2.x's ({"editing_threshold": ...}) uses the
        threshold in every mode; None: LLaDA 8B's samplers."""
        self.block_diffusion = block_diffusion
        self._show_summary()

    def _show_summary(self) -> None:
        fast = self.mode.currentData() == "fast" or self.block_diffusion is not None
        self.parallel.setEnabled(fast and self.remasking.currentText() == "low_confidence")
        self.threshold.setEnabled(fast and self._threshold_on())
        self.threshold_box.setEnabled(self.threshold.isEnabled())
        self.threshold_box.blockSignals(True)
        self.threshold_box.setValue(self.threshold.value() / 100)
        self.threshold_box.blockSignals(False)
        self.summary.setText(schedule_summary(self.settings(), self.block_diffusion))

    def _emit(self) -> None:
        if self._updating:
            return
        self._show_summary()
        self.changed.emit(self.settings())
