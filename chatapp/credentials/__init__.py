"""Each person's own API keys: encrypted at rest, used for their turns in preference to the
server's, shown back only as their last four characters (docs/SECURITY.md rule 12)."""
