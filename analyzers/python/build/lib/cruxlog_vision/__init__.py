"""Cruxlog vision workers.

Keep this module import-light: ``python -m cruxlog_vision.worker`` imports it *before* the worker
has protected its protocol stdout, so nothing imported here may print or load native libraries.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
