"""Decoding photos safely: formats by magic bytes, size and pixel caps, EXIF orientation."""

from faceledger.media.image import DecodedImage, ImageLimits, ImageSource, load_image, sniff_format

__all__ = ["DecodedImage", "ImageLimits", "ImageSource", "load_image", "sniff_format"]
