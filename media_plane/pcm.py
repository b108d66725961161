"""The standard library's ``audioop``: G.711 mu-law and RMS in C, which Pipecat uses too.
Deprecated (gone in Python 3.13, where Pipecat depends on the ``audioop-lts`` backport of
the same name); imported once, here, without its warning."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["audioop"]
