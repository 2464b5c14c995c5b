"""The recommendation API: production and canary serving with every prediction logged."""
