"""The Streamlit side of BPTT Lab: pure figure builders, bounded history, URL state, widgets, pages."""
