"""Test-suite set-up shared by every folder below ``tests/``.

pytest puts this file's folder on ``sys.path``, so test files in
sub-folders (``tests/models/``, ...) import the shared references
(``reference``, ``arrays``, ``metal_shim``) exactly as the top-level ones do.
Test file names stay unique across folders (pytest's default import mode).
"""
