"""Moved to :mod:`vidground.grounding.windows` (the pipeline's stages are one package now); this
name stays for existing imports and is the very same module."""

import sys

from .grounding import windows as _moved

sys.modules[__name__] = _moved
