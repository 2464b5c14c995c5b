"""Who may do what: users, roles and permissions (auth), dashboard sessions, API tokens and
the first admin (bootstrap). Below everything that acts on behalf of someone.
"""
