"""The dashboard's pages; each file is a Streamlit script run by `st.navigation` in `app.py`."""
