"""Evaluation: datasets and protocols (LFW), template computation with a cache, calibration.

Numbers come from :mod:`faceledger.core.metrics`; the programs that print them live in
``bench/`` (``calibrate.py``, ``lfw_accuracy.py``).
"""
