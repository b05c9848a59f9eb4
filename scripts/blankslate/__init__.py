"""blankslate: the imperative half of an impermanent NixOS server."""

__version__ = "0.1.0"
