"""Transitional alias while the accountable Engine is being built (see recognizer.py)."""

from faceledger.recognizer import DEFAULT_BACKEND, FaceChoice, Recognizer, choose_face

Engine = Recognizer

__all__ = ["DEFAULT_BACKEND", "Engine", "FaceChoice", "Recognizer", "choose_face"]
