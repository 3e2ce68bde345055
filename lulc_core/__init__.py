"""LULC Change Explorer core library.

Data flows one way: AOI + dates -> provider -> Scene -> patches -> classifier -> change ->
views / exports. Nothing in this package imports Streamlit.
"""

__version__ = "0.1.0"
