"""The Streamlit dashboard: ``app.py`` routes, ``app_pages/`` renders, ``core`` does the work."""
