"""The movierec dashboard: `streamlit run services/dashboard/app.py` (or `movierec serve dashboard`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this file's folder on sys.path, not the project root.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGES = Path(__file__).with_name("pages")

st.set_page_config(page_title="movierec", page_icon=":material/movie:", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "experiments.py", title="Experiments", icon=":material/science:", default=True),
        st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(PAGES / "data.py", title="Data", icon=":material/bar_chart:"),
        st.Page(PAGES / "try_it.py", title="Try it", icon=":material/play_circle:"),
    ],
    position="top",
)
navigation.run()
