"""Loading and switching models from the window: checks before a load, the worker's answer,
and the sampler defaults that follow the loaded model.

A folder the user opens is remembered in the model list only once it has loaded. When a load
fails, the worker reloads the model that was there (see app.ui.worker), so the window keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from app.session import conversation
from app.models.catalog import recommended_entry
from app.models.defaults import (
    DEMO_NOTE, example_prompts, is_bundled_demo, same_settings, window_defaults,
)
from app.ui.models_ui import DownloadDialog, ModelManager, ask_to_continue, confirm_download

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

DEFAULTS_PREFERENCE = "model_defaults"   # the defaults in force when a model last loaded
NO_MODEL = "No model loaded — File ▸ Open model folder…"


class ModelControl(QObject):
    loaded = Signal(dict)
    failed = Signal(str)

    def __init__(self, window: "MainWindow", given: dict):
        super().__init__(window)
        self.window = window
        self.given = dict(given)          # what the caller asked for, kept across models
        self.info: Optional[dict] = None
        self.identity: Optional[conversation.ModelIdentity] = None
        self.path: Optional[str] = None
        self.loading = False
        self.pending_folder: Optional[str] = None
        self.pending_prompt: Optional[str] = None  # sent once the model being loaded is ready
        self.download_dialog: Optional[DownloadDialog] = None
        self.manager: Optional[ModelManager] = None
        worker = window.workers.worker
        worker.loading.connect(self._on_loading)
        worker.loaded.connect(self._on_loaded)
        worker.load_failed.connect(self._on_load_failed)

    # --- asking for a model ----------------------------------------------------------------
    def load(self, path: str) -> None:
        """Load without asking (the command line's --model, the last model)."""
        window = self.window
        self.path = str(path)
        self.loading = True
        window.update_welcome()
        window.update_send_button()
        picker = getattr(window, "model_picker", None)
        if picker is not None:
            picker.show_state()
        window.workers.request_load.emit(str(path), window.backend_name,
                                         dict(window.load_options))

    def request(self, path: str) -> bool:
        """Load a model the user picked: check the folder and whether it fits in memory first."""
        from app.models.fit import Workload, check_fit
        from app.models.local import validate_model_folder
        from llada_core.checkpoint import CheckpointError

        window = self.window
        try:
            validate_model_folder(path)
            settings = window.settings_panel.settings()
            workload = Workload(gen_length=settings["gen_length"], cfg_scale=settings["cfg_scale"])
            report = check_fit(path, window.memory_limit(), backend=window.backend_name,
                               dtype=window.load_options.get("dtype"), workload=workload)
        except (CheckpointError, OSError) as error:
            window.banner.show_message(f"This folder cannot be used as a model: {error}", "error")
            return False
        if not report.fits and not ask_to_continue(window, report):
            window.status.setText("Loading cancelled: the model may not fit in memory.")
            return False
        self.load(path)
        return True

    def open_folder(self, folder: str) -> bool:
        """A local folder: validated, loaded, and remembered in the model list once it loads."""
        from app.models.local import validate_model_folder
        from llada_core.checkpoint import CheckpointError

        try:
            model = validate_model_folder(folder)
        except CheckpointError as error:
            self.window.banner.show_message(f"This folder cannot be used as a model: {error}",
                                            "error")
            return False
        if not self.request(str(model.path)):
            return False
        self.pending_folder = str(model.path)
        return True

    def try_example(self, path: str, prompt: str) -> bool:
        """Load `path` (the welcome page's demo) and send `prompt` once it is loaded."""
        if not self.request(path):
            return False
        self.pending_prompt = prompt
        return True

    def choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Open a LLaDA model folder")
        if folder:
            self.open_folder(folder)

    def download(self, repo_id: str) -> Optional[DownloadDialog]:
        """Open the download dialog for `repo_id`; the model loads once it is complete. A large
        download asks first (size, free disk); None when the user declines or space is short."""
        window = self.window
        if self.download_dialog is not None and self.download_dialog.running:
            self.download_dialog.raise_()
            return self.download_dialog
        if not confirm_download(window, repo_id, window.hub_cache_dir):
            window.status.setText("Download not started.")
            return None
        dialog = DownloadDialog(repo_id, window, cache_dir=window.hub_cache_dir,
                                endpoint=window.hub_endpoint)
        dialog.downloaded.connect(self._downloaded)
        self.download_dialog = dialog
        dialog.show()
        dialog.start()
        return dialog

    def _downloaded(self, folder: str) -> None:
        from app.models.convert import converts_after_download

        if self.manager is not None:
            self.manager.refresh()
        repo_id = self.download_dialog.repo_id if self.download_dialog is not None else None
        if repo_id and converts_after_download(folder):
            manager = self.show_manager()
            manager.select(repo_id)
            converting = manager.convert_selected()
            if converting is not None:
                converting.converted.connect(self.window.request_model)
                return
        self.window.request_model(folder)

    def show_manager(self) -> ModelManager:
        window = self.window
        if self.manager is None:
            manager = ModelManager(window.store, window, cache_dir=window.hub_cache_dir)
            manager.use_requested.connect(window.request_model)
            manager.download_requested.connect(window.download_model)
            self.manager = manager
        self.manager.loaded_path = self.path if self.info is not None else None
        self.manager.refresh()
        self.manager.show()
        self.manager.raise_()
        return self.manager

    # --- the worker's answer ---------------------------------------------------------------
    def _on_loading(self, path: str) -> None:
        self.window.status.setText(f"Loading {path} …")
        self.window.update_send_button()
        picker = getattr(self.window, "model_picker", None)
        if picker is not None:
            picker.show_state()

    def _on_loaded(self, info: dict) -> None:
        window = self.window
        restored = bool(info.get("restored"))
        self.info = info
        self.identity = conversation.ModelIdentity.from_info(info)
        self.path = info["path"]
        self.loading = False
        if not restored:
            if self.pending_folder is not None and Path(self.pending_folder) == Path(info["path"]):
                from app.models.local import add_folder

                add_folder(window.store, info["path"])
            window.store.set_preference("last_model", info["path"])
            if window.banner.kind == "error":
                window.banner.hide()
            if is_bundled_demo(info["path"]):
                entry = recommended_entry()
                window.banner.show_message(DEMO_NOTE, "info", action=(
                    f"Get {entry.name}…", lambda: window.download_model(entry.repo_id)))
            elif window.banner.text() == DEMO_NOTE:
                window.banner.hide()
            self.follow_defaults(info["path"])
        self.pending_folder = None
        window.update_welcome()
        device = f", {info['device']}" if info.get("device") else ""
        dtype = f", {info['dtype']}" if info.get("dtype") else ""
        window.status.setText(f"Model: {self.identity.label} ({info['backend']}{device}{dtype})")
        window.update_send_button()
        if self.manager is not None:
            self.manager.loaded_path = self.path
            self.manager.refresh()
        window.context.show_model(self.identity)
        window.settings_panel.set_block_diffusion(info.get("block_diffusion"))
        window.transcript.set_examples(example_prompts(info["path"]))
        self.loaded.emit(info)
        prompt, self.pending_prompt = self.pending_prompt, None
        if prompt and not restored:
            window.send(prompt)

    def _on_load_failed(self, message: str) -> None:
        window = self.window
        self.info = self.identity = None
        self.loading = False
        self.pending_folder = self.pending_prompt = None
        window.update_welcome()
        window.status.setText(NO_MODEL)
        window.update_send_button()
        if self.manager is not None:
            self.manager.loaded_path = None
            self.manager.refresh()
        window.banner.show_message(message, "error")
        window.context.show_model(None)
        self.failed.emit(message)

    # --- sampler defaults ------------------------------------------------------------------
    def follow_defaults(self, path: str) -> None:
        """The loaded model's defaults replace the previous model's in every conversation that
        still holds them (never in one whose settings the user changed)."""
        window = self.window
        store = window.store
        new = window_defaults(path, self.given)
        previous = store.preference(DEFAULTS_PREFERENCE) or window.default_settings
        window.default_settings = new
        store.set_preference(DEFAULTS_PREFERENCE, new)
        if same_settings(previous, new):
            return
        for item in store.conversations():
            if not item.settings or same_settings(item.settings, previous):
                store.set_conversation_settings(item.id, new)
        if window.current_id is not None:
            current = store.conversation(window.current_id)
            if current is not None:
                window.settings_panel.set_settings(current.settings or new)
