"""Registering tfl's Keras layers, so a tfl `.keras` file loads after a plain `import tfl`.

Keras finds a custom layer of a `.keras` file (`FastLSTM`, `RotaryDecoderBlock`, keras-hub's
layers) only if its class was registered before `keras.saving.load_model` runs. Registering
means importing Keras, and with it TensorFlow (seconds), which `import tfl` must not do: the
CLI's `--help` and the notebooks' first cell stay fast. So `import tfl` registers the layers at
once if Keras is already imported, and otherwise right after Keras itself is first imported.

>>> import keras, tfl
>>> "tfl>FastLSTM" in keras.saving.get_custom_objects()
True
"""

import importlib.abc
import importlib.util
import sys


def register_layers():
    """Import (and so register) every layer a tfl `.keras` file may hold. Safe to call again."""
    import keras_hub  # noqa: F401  (keras-hub's layers)

    from tfl.models import fast_lstm, rotary_block  # noqa: F401  (tfl's own layers)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs Keras's own loader, then registers tfl's layers."""

    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        try:
            register_layers()
        except ImportError:
            # Keras imported in the middle of another package's import (e.g. TensorFlow's):
            # `tfl.load_run` registers the layers itself before it loads anything.
            pass

    def __getattr__(self, name):  # resources, code, is_package: as Keras's own loader
        return getattr(self.loader, name)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds Keras as Python would, and wraps its loader until Keras has been imported.

    It stays in place after a mere look-up (`importlib.util.find_spec("keras")`, which
    TensorFlow does), and leaves once Keras has really been imported.
    """

    searching = False

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras" or self.searching:
            return None
        self.searching = True  # the look-up below asks every finder again, this one included
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


def register_layers_with_keras():
    """Register tfl's layers now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules:
        try:
            register_layers()
        except ImportError:
            pass
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
