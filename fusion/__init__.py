"""fusion: a research platform for multichannel sensor time-series; the notebooks in nbs/ are the source."""

__version__ = "0.1.0"
