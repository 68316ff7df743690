"""The core: pure functions on arrays. No files, no network, no models, no terminal."""
