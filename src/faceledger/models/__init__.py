"""Backends: detectors and embedders behind small protocols, chosen by name."""
