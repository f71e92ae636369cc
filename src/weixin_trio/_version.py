"""The library's version: also the source of ``channel_version`` and ``iLink-App-ClientVersion``."""

__version__ = "0.1.0"
