"""One module per dashboard page; each is a script that st.navigation runs."""
