"""Streamlit UI helpers for the LULC Change Explorer (may import streamlit; lulc_core must not)."""
