"""LULC Change Explorer core library.

Data flows one way: AOI + dates -> provider -> Scene -> cells (dense classifier, 10 m spectral
evidence) -> change -> views / exports. Nothing in this package imports Streamlit.
"""

__version__ = "0.1.0"
