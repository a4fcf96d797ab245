"""mnist_net: the assignment's 14,120-parameter MNIST CNN, its training, evaluation and demo helpers."""
from importlib import import_module as _import_module

# Loaded on first use, not with the package: `python -m mnist_net.evaluate` imports this package before
# evaluate.py runs, and torch's second of loading here would be out of reach of evaluate's Ctrl-C handling.
_EXPORTS = {"Net": "model", "ModelConfig": "model", "count_parameters": "model", "summary_text": "model",
            "load_model": "checkpoint", "save_weights": "checkpoint", "WeightsError": "checkpoint",
            "DEFAULT_WEIGHTS": "checkpoint"}
__all__ = list(_EXPORTS)


_SUBMODULES = ("artifacts", "checkpoint", "cli", "cuda_graph", "data", "evaluate", "explain", "inference", "model",
               "render", "report", "sketch", "training")


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(_import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _SUBMODULES:  # `import mnist_net; mnist_net.checkpoint` worked when the package imported it
        return _import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
