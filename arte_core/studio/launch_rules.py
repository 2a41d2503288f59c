"""What a run launched from the studio may load: registry models, Hub ids and folders inside the server's
models folder, and no code shipped with a model unless the server's owner allows it. On a public Hugging
Face Space no run is launched at all unless the Space's owner turns launching on (ARTE_ALLOW_RUNS=1).

Whoever can open the studio can launch a run, and a run loads the models its config names in a child
process on the server: a model folder's Python (`trust_remote_code`) or any folder on the server's disk
would run there. The server's owner opens these doors with environment variables of the studio
process; the CLI, the owner's own shell, is not limited.
"""

from __future__ import annotations

import os
from pathlib import Path

from arte_core.config import RunConfig
from arte_core.errors import ArteError
from arte_core.models.registry import REGISTRY, check_model_name, looks_like_hub_id, registry_names

ALLOW_REMOTE_CODE_ENV = "ARTE_ALLOW_REMOTE_CODE"  # "1": runs may set trust_remote_code
MODELS_DIR_ENV = "ARTE_MODELS_DIR"  # the only folder whose model folders runs may load
ALLOW_RUNS_ENV = "ARTE_ALLOW_RUNS"  # "1": visitors of a Space may launch runs
SPACE_ENV = "SPACE_ID"  # set by Hugging Face on every Space
MODEL_ROLES = ("teacher", "student")
SPACE_RUNS_OFF = ("Launching runs is off on this public Space: every run takes minutes of the Space's shared CPU "
                  "(the demo's whole loop about 20), and a restart loses whatever it wrote. You can browse every "
                  "run and decide pairs in your own sandbox. The Space's owner can turn launching on with "
                  f"{ALLOW_RUNS_ENV}=1; or run the studio on your own machine (`make demo`).")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def models_dir() -> Path | None:
    """The server's models folder (ARTE_MODELS_DIR, resolved), or None when the owner set none."""
    value = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def allowed_models_text() -> str:
    """What the launch form may name on this server, in words for the page."""
    root = models_dir()
    folders = f"a model folder inside {root}" if root else f"no local folder (the server sets none: {MODELS_DIR_ENV})"
    code = "allowed" if _env_flag(ALLOW_REMOTE_CODE_ENV) else f"off on this server ({ALLOW_REMOTE_CODE_ENV})"
    return (f"Teacher and student: a registry model ({', '.join(registry_names())}), a Hub id (org/name) or "
            f"{folders}. Model code (trust_remote_code): {code}.")


def runs_off_reason() -> str | None:
    """Why this server launches no runs at all (a Space whose owner did not allow it), else None."""
    if os.environ.get(SPACE_ENV, "").strip() and not _env_flag(ALLOW_RUNS_ENV):
        return SPACE_RUNS_OFF
    return None


def check_runs_allowed() -> None:
    """Refuse any launch on a Space whose owner did not turn launching on."""
    reason = runs_off_reason()
    if reason:
        raise ArteError(reason)


def check_launch_allowed(config: RunConfig) -> None:
    """Refuse (ArteError, worded for the page) a config the studio must not run on this server."""
    check_runs_allowed()
    if config.trust_remote_code and not _env_flag(ALLOW_REMOTE_CODE_ENV):
        raise ArteError("This studio does not run code shipped with a model: set trust_remote_code to false. "
                        f"Only the server's owner can allow it, by starting the studio with {ALLOW_REMOTE_CODE_ENV}=1.")
    for role in MODEL_ROLES:
        check_studio_model(role, getattr(config, role))


def check_studio_model(role: str, name: str) -> None:
    """A registry name or a Hub id passes (as the registry allows them); a local path must lie inside
    the models folder, also after following `..` and symbolic links."""
    if name in REGISTRY or looks_like_hub_id(name):
        check_model_name(name)
        return
    folder = Path(name).expanduser().resolve()  # relative: to the working folder, as the job resolves it
    root = models_dir()
    registry, hub = f"a registry model ({', '.join(registry_names())})", "a Hugging Face Hub id like org/name"
    if root is None:
        raise ArteError(f"The {role} {name!r} is a local path, and this studio loads no local model folders: use "
                        f"{registry} or {hub}. The server's owner can name a models folder with {MODELS_DIR_ENV}.")
    if folder != root and root not in folder.parents:
        raise ArteError(f"The {role} {name!r} is outside this studio's models folder {root}: use {registry}, {hub} "
                        f"or a folder inside {root}.")
    check_model_name(str(folder))
