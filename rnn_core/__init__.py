"""rnn_core: train small recurrent models and record, exactly, how the gradient flows back through time.

Works alone (script, notebook, CLI); the Streamlit app is one client of it.
"""
from .config import ConfigError, RunConfig, make_config

__all__ = ["ConfigError", "RunConfig", "make_config"]
