"""api.Options: defaults, FromMap type rules, and which options force a reload."""

from __future__ import annotations

INT = "integer"
FLOAT = "float32"
BOOL = "boolean"
STRINGS = "array"

# JSON tag -> kind (api/types.go Options + Runner)
KINDS = {
    "num_ctx": INT, "num_batch": INT, "num_gpu": INT, "main_gpu": INT, "use_mmap": BOOL,
    "num_thread": INT, "draft_num_predict": INT,
    "num_keep": INT, "seed": INT, "num_predict": INT, "top_k": INT, "top_p": FLOAT, "min_p": FLOAT,
    "typical_p": FLOAT, "repeat_last_n": INT, "temperature": FLOAT, "repeat_penalty": FLOAT,
    "presence_penalty": FLOAT, "frequency_penalty": FLOAT, "stop": STRINGS,
}

# Options that are fixed when llama-server starts: changing one reloads the model.
RUNNER_KEYS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")


class OptionError(ValueError):
    pass


def defaults(num_ctx: int) -> dict:
    """api.DefaultOptions() with NumCtx already resolved by the caller."""
    return {
        "num_predict": -1, "num_keep": 4, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.0,
        "typical_p": 1.0, "repeat_last_n": 64, "repeat_penalty": 1.0, "presence_penalty": 0.0,
        "frequency_penalty": 0.0, "seed": -1, "stop": [],
        "num_ctx": num_ctx, "num_batch": 512, "num_gpu": -1, "main_gpu": None, "use_mmap": None,
        "num_thread": 0, "draft_num_predict": 4,
    }


def apply(opts: dict, m: dict | None, log=None) -> None:
    """Options.FromMap: unknown keys only warn; wrong types are errors."""
    for key, val in (m or {}).items():
        kind = KINDS.get(key)
        if kind is None:
            if log is not None:
                log.warn("types.go:1007", "invalid option provided", "option", key)
            continue
        if val is None:
            continue
        if kind == INT:
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise OptionError(f'option "{key}" must be of type integer')
            opts[key] = int(val)
        elif kind == FLOAT:
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise OptionError(f'option "{key}" must be of type float32')
            opts[key] = float(val)
        elif kind == BOOL:
            if not isinstance(val, bool):
                raise OptionError(f'option "{key}" must be of type boolean')
            opts[key] = val
        else:
            if not isinstance(val, list):
                raise OptionError(f'option "{key}" must be of type array')
            if not all(isinstance(x, str) for x in val):
                raise OptionError(f'option "{key}" must be of an array of strings')
            opts[key] = list(val)
